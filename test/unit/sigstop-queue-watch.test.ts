// Direct mode's watch on nix's daemon connections: how full a connection counts (the daemon's send
// buffer, or the bytes queued when the daemon's side is out of sight), pressure with hysteresis, and
// on real sockets in this process: a daemon connection whose sender fills its buffer raises pressure,
// reading it releases it, and a full socket that is not a daemon connection changes nothing.
import { afterEach, beforeEach, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { BLIND_FACTOR, connFill, DaemonQueueWatch, nextPressure, openSockDiag, type ConnSample } from "../../src/sigstop/queue-watch.ts";
import { accept, close, connectUnix, EAGAIN, listenUnix, recv, send, setNonBlocking, socketPair } from "../../src/sys/sock.ts";

const BUF = 212992;
test.each<[string, ConnSample, number]>([
  ["the daemon's buffer half used", { queued: 999, daemonSend: { used: BUF / 2, size: BUF } }, 0.5],
  ["the daemon's buffer full, few bytes queued (small messages)", { queued: 30000, daemonSend: { used: BUF, size: BUF } }, 1],
  ["nothing queued", { queued: 0, daemonSend: { used: 0, size: BUF } }, 0],
  ["the daemon out of sight: bytes queued against 1/16 of the buffer", { queued: BUF / BLIND_FACTOR / 2 }, 0.5],
  ["a daemon buffer of unknown size counts as out of sight", { queued: BUF / BLIND_FACTOR, daemonSend: { used: 5, size: 0 } }, 1],
])("fill: %s", (_name, sample, fill) => expect(connFill(sample, BUF)).toBe(fill));

test.each<[boolean, number[], boolean]>([
  [false, [], false],
  [false, [0.49], false],
  [false, [0.1, 0.5], true],
  [true, [0.3], true],
  [true, [0.25, 0.1], false],
  [true, [], false],
])("pressure %p with fills %p → %p", (raised, fills, next) => expect(nextPressure(raised, fills)).toBe(next));

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
let dir: string;
let fds: number[];
let watch: DaemonQueueWatch | undefined;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "queue-watch-"));
  fds = [];
});
afterEach(() => {
  watch?.close();
  for (const fd of fds) close(fd);
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Writes 100-byte messages (like log lines) until the peer's side is full; returns the bytes sent. */
function flood(fd: number): number {
  const line = new Uint8Array(100);
  let total = 0;
  for (;;) {
    const n = send(fd, line);
    if (n === -EAGAIN) return total;
    if (n < 0) throw new Error(`send: ${n}`);
    total += n;
  }
}

function drain(fd: number): void {
  const buf = new Uint8Array(65536);
  while (recv(fd, buf) > 0);
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > 3000) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}

function setup() {
  const sock = path.join(dir, "daemon.sock");
  const lfd = listenUnix(sock);
  const client = connectUnix(sock);
  const daemon = accept(lfd);
  fds.push(lfd, client, daemon);
  const { diag, daemonInode } = openSockDiag(sock);
  const events: boolean[] = [];
  const target = { stopped: true, onPressure: (full: boolean) => events.push(full) };
  // This process plays nix: its sockets are the ones watched.
  watch = new DaemonQueueWatch(process.pid, diag, daemonInode, target, quiet, 10);
  return { client, daemon, events, target, watch };
}

test("a daemon connection whose sender is blocked raises pressure; reading the backlog releases it", async () => {
  const { client, daemon, events, watch } = setup();
  const sent = flood(daemon);
  watch.kick();
  await until(() => events.length === 1, "pressure");
  expect(events).toEqual([true]);
  expect(watch.stats.connections).toBe(1);
  expect(watch.stats.peakQueuedBytes).toBe(sent);
  expect(watch.stats.peakDaemonSendBytes).toBeGreaterThanOrEqual(watch.stats.daemonSendBufferBytes / 2);
  drain(client);
  await until(() => events.length === 2, "release");
  expect(events).toEqual([true, false]);
});

test("a few queued bytes raise nothing", async () => {
  const { daemon, events, watch } = setup();
  expect(send(daemon, new Uint8Array(4096))).toBe(4096);
  watch.kick();
  await until(() => watch.stats.polls >= 3, "three polls");
  expect(events).toEqual([]);
  expect(watch.stats.peakQueuedBytes).toBe(4096);
});

test("a full socket that is not a daemon connection raises nothing", async () => {
  const { events, watch } = setup();
  const [a, b] = socketPair();
  fds.push(a, b);
  setNonBlocking(a);
  flood(a);
  watch.kick();
  await until(() => watch.stats.polls >= 3, "three polls");
  expect(events).toEqual([]);
  // Only the (empty) daemon connection counts.
  expect(watch.stats.connections).toBe(1);
});

test("nothing is polled while nix runs", async () => {
  const { daemon, events, target, watch } = setup();
  target.stopped = false;
  flood(daemon);
  watch.kick();
  await Bun.sleep(60);
  expect(watch.stats.polls).toBe(0);
  expect(events).toEqual([]);
});
