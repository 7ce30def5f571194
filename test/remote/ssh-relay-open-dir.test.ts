// Expected: a relay directory that group or others can enter is not used (anyone there could put a
// socket in the relay's place and see every stream): no relay starts, and the hook's stream still
// works over its own connection.
import { afterAll, beforeAll, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { type RelayLab, relayPids, runClient, startRelayLab } from "./relay-helpers.ts";

let lab: RelayLab;
beforeAll(async () => {
  lab = await startRelayLab();
});
afterAll(async () => {
  await lab?.stop();
});

test.each([0o755, 0o770, 0o1777])("a relay directory with mode %o is refused", async (mode) => {
  const state = path.join(lab.dir, `state-${mode.toString(8)}`);
  fs.mkdirSync(path.join(state, "ssh-relay"), { recursive: true });
  fs.chmodSync(path.join(state, "ssh-relay"), mode);
  const r = await runClient(lab.configFile, state, lab.nodeSocket, { send: 10 });
  expect(r.error).toBeUndefined();
  expect(r.viaRelay).toBe(false);
  expect(r.backText).toMatch(/^[0-9a-f]{64} 10\n/);
  expect(relayPids(state)).toEqual([]);
}, 240_000);
