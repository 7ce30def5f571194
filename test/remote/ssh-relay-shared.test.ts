// Expected: hooks on one machine share the ssh relay's connection. Several separate processes, each
// with its own SshPool, open streams to a unix socket on the sshd host through the relay: every
// stream round-trips intact (4 MiB each way, more than an ssh window, and the server's whole answer
// comes after the client's half-close), and sshd saw ONE connection for all of them. And the other
// way round: a socket that speaks first and half-closes at once still receives all the client sends.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { type SshdLab, startSshd } from "../lab/sshd.ts";
import { acceptedConnections, answerAfterEof, expectedReply, relayPids, runClient, waitFor } from "./relay-helpers.ts";

let sshd: SshdLab;
let dir: string;
let server: net.Server;
const SEND = 4 << 20;
const REPLY = 4 << 20;

beforeAll(async () => {
  sshd = await startSshd();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-relay-"));
  server = answerAfterEof(path.join(dir, "node.sock"), REPLY);
});
afterAll(async () => {
  server?.close();
  for (const pid of relayPids(dir)) process.kill(pid, "SIGTERM");
  fs.rmSync(dir, { recursive: true, force: true });
  await sshd?.stop();
});

test("separate processes share one ssh connection through the relay, and every byte arrives", async () => {
  const state = path.join(dir, "state");
  const before = acceptedConnections(sshd.logFile);
  const sent = new Uint8Array(SEND).map((_, i) => (i * 7 + 3) & 0xff);
  const want = expectedReply(sent, REPLY);
  // The first starts the relay; then three at once.
  const client = () => runClient(sshd.configFile, state, path.join(dir, "node.sock"), { send: SEND });
  const results = [await client()];
  results.push(...await Promise.all([1, 2, 3].map(client)));
  for (const r of results) {
    expect(r.error).toBeUndefined();
    expect(r.viaRelay).toBe(true);
    expect(r.backBytes).toBe(want.bytes);
    expect(r.backSha).toBe(want.sha);
  }
  expect(relayPids(dir).length).toBe(1);
  await waitFor("sshd's log", () => acceptedConnections(sshd.logFile) > before);
  expect(acceptedConnections(sshd.logFile) - before).toBe(1);
}, 240_000);

test("a remote socket that half-closes first still gets everything the client sends after", async () => {
  const got = Promise.withResolvers<{ sha: string; bytes: number }>();
  const early = net.createServer({ allowHalfOpen: true }, (c) => {
    const hash = createHash("sha256");
    let bytes = 0;
    c.end("hello, and that is all from me\n");
    c.on("data", (b: Buffer) => {
      hash.update(b);
      bytes += b.byteLength;
    });
    c.on("end", () => got.resolve({ sha: hash.digest("hex"), bytes }));
    c.on("error", () => {});
  });
  const sock = path.join(dir, "early.sock");
  early.listen(sock);
  try {
    const r = await runClient(sshd.configFile, path.join(dir, "state"), sock, { send: SEND, env: { RELAY_READ_FIRST: "1" } });
    expect(r.error).toBeUndefined();
    expect(r.viaRelay).toBe(true);
    expect(r.backText).toBe("hello, and that is all from me\n");
    const received = await got.promise;
    expect(received.bytes).toBe(SEND);
    expect(received.sha).toBe(r.sentSha!);
  } finally {
    early.close();
  }
}, 240_000);
