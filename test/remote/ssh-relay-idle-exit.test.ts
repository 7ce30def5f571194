// Expected: the relay does not outstay its use. With ssh-relay-idle-time = 1 it leaves soon after its
// last client (and removes its socket); with a long idle time it still leaves soon after its state
// directory is removed (a test's, or a user's cleanup), instead of lingering forever.
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

const sockets = (state: string) => fs.readdirSync(path.join(state, "ssh-relay")).filter((f) => f.endsWith(".sock"));

test("with an idle time of 1 s the relay leaves after its last client", async () => {
  const state = path.join(lab.dir, "idle");
  const r = await runClient(lab.configFile, state, lab.nodeSocket, { send: 10, idle: 1 });
  expect(r.viaRelay).toBe(true);
  await waitFor("the relay to leave", () => relayPids(state).length === 0);
  expect(sockets(state)).toEqual([]);
}, 240_000);

test("the relay leaves once its state directory is removed", async () => {
  const state = path.join(lab.dir, "removed");
  const r = await runClient(lab.configFile, state, lab.nodeSocket, { send: 10, idle: 3600 });
  expect(r.viaRelay).toBe(true);
  expect(relayPids(state).length).toBe(1);
  fs.rmSync(state, { recursive: true, force: true });
  await waitFor("the relay to leave", () => relayPids(state).length === 0);
}, 240_000);
