// The poll(2) relay on real unix sockets in one process: bytes pass unchanged both ways, the
// daemon→nix queue stays within its bound (then pressure), and each side's end reaches the other.
import { afterEach, beforeEach, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Relay } from "../../src/sigstop/relay.ts";
import { close, connectUnix, EAGAIN, listenUnix, recv, send, setNonBlocking, socketPair } from "../../src/sys/sock.ts";

let dir: string;
let fds: number[];
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "relay-test-"));
  fds = [];
});
afterEach(() => {
  for (const fd of fds) close(fd);
  fs.rmSync(dir, { recursive: true, force: true });
});

interface Setup {
  relay: Relay;
  client: number;
  /** The fake daemon's end of each upstream connection, in order. */
  daemons: number[];
  pressure: boolean[];
}

function setup(bound: number): Setup {
  const listenFd = listenUnix(path.join(dir, "s"));
  fds.push(listenFd);
  const daemons: number[] = [];
  const pressure: boolean[] = [];
  const relay = new Relay({
    listenFd,
    bound,
    openUpstream: () => {
      const [mine, theirs] = socketPair();
      setNonBlocking(theirs);
      daemons.push(theirs);
      fds.push(theirs);
      return mine;
    },
    onPressure: (full) => pressure.push(full),
  });
  const client = connectUnix(path.join(dir, "s"));
  fds.push(client);
  pump(relay, () => daemons.length === 1);
  return { relay, client, daemons, pressure };
}

/** Runs relay steps until `done` (at most `limit` steps). */
function pump(relay: Relay, done: () => boolean, limit = 10000): void {
  for (let i = 0; i < limit && !done(); i++) relay.step(0);
  expect(done()).toBe(true);
}

/** Sends what the socket takes now; returns the rest. */
function sendSome(fd: number, data: Uint8Array): Uint8Array {
  if (data.length === 0) return data;
  const n = send(fd, data);
  return n > 0 ? data.subarray(n) : data;
}

const scratch = new Uint8Array(65536);
/** Reads what is there now into `into`; returns false at end of stream. */
function recvSome(fd: number, into: Buffer[]): boolean {
  const n = recv(fd, scratch);
  if (n === -EAGAIN) return true;
  if (n <= 0) return false;
  into.push(Buffer.from(scratch.subarray(0, n)));
  return true;
}

const joined = (parts: Buffer[]) => Buffer.concat(parts);

test("bytes pass unchanged both ways and are counted", () => {
  const { relay, client, daemons } = setup(1 << 20);
  const down = randomBytes(3 << 20);
  const up = randomBytes(200_000);
  let downRest: Uint8Array = down;
  let upRest: Uint8Array = up;
  const gotDown: Buffer[] = [];
  const gotUp: Buffer[] = [];
  pump(relay, () => {
    downRest = sendSome(daemons[0]!, downRest);
    upRest = sendSome(client, upRest);
    recvSome(client, gotDown);
    recvSome(daemons[0]!, gotUp);
    return joined(gotDown).length === down.length && joined(gotUp).length === up.length;
  });
  expect(joined(gotDown).equals(down)).toBe(true);
  expect(joined(gotUp).equals(up)).toBe(true);
  expect(relay.stats.bytesToClient).toBe(down.length);
  expect(relay.stats.connections).toBe(1);
  expect(relay.stats.open).toBe(1);
});

test("a client that does not read: the queue stops at its bound, pressure until it drains", () => {
  const bound = 256 * 1024;
  const { relay, client, daemons, pressure } = setup(bound);
  const down = randomBytes(4 << 20);
  let rest: Uint8Array = down;
  // The client reads nothing: the daemon's sends stop being taken once the relay stops reading it.
  for (let i = 0; i < 2000; i++) {
    rest = sendSome(daemons[0]!, rest);
    relay.step(0);
  }
  expect(pressure).toEqual([true]);
  expect(rest.length).toBeGreaterThan(0);
  expect(relay.stats.peakQueued).toBeGreaterThan(bound);
  expect(relay.stats.peakQueued).toBeLessThanOrEqual(bound + 64 * 1024);
  // Now the client reads: everything arrives, in order, and the pressure ends.
  const got: Buffer[] = [];
  pump(relay, () => {
    rest = sendSome(daemons[0]!, rest);
    recvSome(client, got);
    return joined(got).length === down.length;
  });
  expect(joined(got).equals(down)).toBe(true);
  // The daemon keeps sending while nix drains, so the queue may fill again: full and drained alternate.
  expect(pressure.length % 2).toBe(0);
  expect(pressure.every((full, i) => full === (i % 2 === 0))).toBe(true);
  expect(relay.stats.peakQueued).toBeLessThanOrEqual(bound + 64 * 1024);
});

test("the daemon hangs up while the client is not reading: what it sent still arrives, then EOF", () => {
  const bound = 64 * 1024;
  const { relay, client, daemons, pressure } = setup(bound);
  const down = randomBytes(400_000);
  let rest: Uint8Array = down;
  for (let i = 0; i < 2000 && rest.length > 0; i++) {
    rest = sendSome(daemons[0]!, rest);
    relay.step(0);
  }
  expect(rest.length).toBe(0);
  close(daemons[0]!);
  fds.splice(fds.indexOf(daemons[0]!), 1);
  for (let i = 0; i < 50; i++) relay.step(0);
  expect(pressure).toEqual([true]);
  const got: Buffer[] = [];
  let open = true;
  pump(relay, () => {
    open = recvSome(client, got);
    return !open;
  });
  expect(joined(got).equals(down)).toBe(true);
  expect(pressure).toEqual([true, false]);
  expect(relay.stats.open).toBe(0);
});

test("nix closing its connection closes the daemon's at once", () => {
  const { relay, client, daemons } = setup(1 << 20);
  send(client, new Uint8Array([1, 2, 3]));
  close(client);
  fds.splice(fds.indexOf(client), 1);
  const got: Buffer[] = [];
  let open = true;
  pump(relay, () => {
    open = recvSome(daemons[0]!, got);
    return !open;
  });
  expect(relay.stats.open).toBe(0);
});

test("an upstream that cannot be opened closes nix's connection and the relay goes on", () => {
  const listenFd = listenUnix(path.join(dir, "s"));
  fds.push(listenFd);
  const errors: string[] = [];
  const relay = new Relay({
    listenFd,
    bound: 1024,
    openUpstream: () => {
      throw new Error("no daemon");
    },
    onError: (m) => errors.push(m),
  });
  const client = connectUnix(path.join(dir, "s"));
  fds.push(client);
  let open = true;
  pump(relay, () => {
    open = recvSome(client, []);
    return !open;
  });
  expect(errors).toEqual(["no daemon"]);
  expect(relay.stats.connections).toBe(0);
});

test("the daemon closes with bytes still queued for nix: they arrive before nix sees the end", () => {
  const { relay, client, daemons } = setup(4 << 20);
  const down = randomBytes(1 << 20);
  let rest: Uint8Array = down;
  for (let i = 0; i < 2000 && rest.length > 0; i++) {
    rest = sendSome(daemons[0]!, rest);
    relay.step(0);
  }
  close(daemons[0]!);
  fds.splice(fds.indexOf(daemons[0]!), 1);
  for (let i = 0; i < 50; i++) relay.step(0);
  // More than nix's socket holds was sent: the relay still queues some after the daemon's end.
  expect(relay.stats.open).toBe(1);
  const got: Buffer[] = [];
  pump(relay, () => !recvSome(client, got));
  expect(joined(got).equals(down)).toBe(true);
  expect(relay.stats.open).toBe(0);
});
