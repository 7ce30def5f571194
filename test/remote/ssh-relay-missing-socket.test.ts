// Expected: a stream to a remote socket path that does not exist, asked through the relay, fails at
// once with an SshError naming the path (callers fall back to a bridge command): the relay's answer,
// not a hang and not a retry over the hook's own connection (sshd sees no new connection); the relay
// keeps serving.
import { afterAll, beforeAll, expect, test } from "bun:test";
import * as path from "node:path";
import { acceptedConnections, type RelayLab, relayPids, runClient, startRelayLab } from "./relay-helpers.ts";

let lab: RelayLab;
beforeAll(async () => {
  lab = await startRelayLab();
});
afterAll(async () => {
  await lab?.stop();
});

test("a missing remote socket is a clear SshError naming it", async () => {
  const state = path.join(lab.dir, "state");
  const first = await runClient(lab.configFile, state, lab.nodeSocket, { send: 10 });
  expect(first.viaRelay).toBe(true);
  const connections = acceptedConnections(lab.logFile);
  const missing = path.join(lab.dir, "no-such-agent.sock");
  const r = await runClient(lab.configFile, state, missing);
  expect(r.ok).toBe(false);
  expect(r.name).toBe("SshError");
  expect(r.error).toContain(missing);
  expect(acceptedConnections(lab.logFile)).toBe(connections);
  expect(relayPids(lab.dir).length).toBe(1);
  const ok = await runClient(lab.configFile, state, lab.nodeSocket, { send: 10 });
  expect(ok.viaRelay).toBe(true);
  expect(ok.backText).toMatch(/^[0-9a-f]{64} 10\n/);
}, 240_000);
