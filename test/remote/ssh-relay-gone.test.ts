// Expected: a relay that is killed, or one that never starts listening, costs a hook nothing but
// the shared connection: the next client still gets its stream (through a new relay after a kill:
// the dead relay's socket is stale and its lock free; over its own ssh connection when no relay
// listens within the start wait).
import { afterAll, beforeAll, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { type RelayLab, relayPids, runClient, startRelayLab, waitFor } from "./relay-helpers.ts";

let lab: RelayLab;
beforeAll(async () => {
  lab = await startRelayLab();
});
afterAll(async () => {
  await lab?.stop();
});

test("after the relay is killed, the next client still gets its stream", async () => {
  const state = path.join(lab.dir, "killed");
  const first = await runClient(lab.configFile, state, lab.nodeSocket, { send: 10 });
  expect(first.viaRelay).toBe(true);
  const [pid] = relayPids(lab.dir);
  process.kill(pid!, "SIGKILL");
  await waitFor("the relay to die", () => !relayPids(lab.dir).includes(pid!));
  const sockets = fs.readdirSync(path.join(state, "ssh-relay")).filter((f) => f.endsWith(".sock"));
  expect(sockets.length).toBe(1); // its socket file stays behind, stale
  const next = await runClient(lab.configFile, state, lab.nodeSocket, { send: 10 });
  expect(next.error).toBeUndefined();
  expect(next.backText).toMatch(/^[0-9a-f]{64} 10\n/);
  // It started a new relay in the dead one's place, which serves the clients after it.
  await waitFor("a new relay", () => relayPids(lab.dir).length === 1);
  const after = await runClient(lab.configFile, state, lab.nodeSocket, { send: 10 });
  expect(after.viaRelay).toBe(true);
  expect(after.backText).toMatch(/^[0-9a-f]{64} 10\n/);
}, 240_000);

test("when the relay never listens, the client uses its own connection", async () => {
  const state = path.join(lab.dir, "never");
  // A "relay" program that exits at once without listening.
  const r = await runClient(lab.configFile, state, lab.nodeSocket, { send: 10, env: { RELAY_NSH: "/bin/true" } });
  expect(r.error).toBeUndefined();
  expect(r.viaRelay).toBe(false);
  expect(r.backText).toMatch(/^[0-9a-f]{64} 10\n/);
}, 240_000);

test("when the relay's directory cannot be made, the client uses its own connection", async () => {
  const notADir = path.join(lab.dir, "a-file");
  fs.writeFileSync(notADir, "");
  const r = await runClient(lab.configFile, notADir, lab.nodeSocket, { send: 10 });
  expect(r.error).toBeUndefined();
  expect(r.viaRelay).toBe(false);
  expect(r.backText).toMatch(/^[0-9a-f]{64} 10\n/);
}, 240_000);
