// Expected: 10 hooks that need a channel at the same moment, with no relay running, end up with
// exactly ONE relay (each may start one; the lock lets one serve and the others leave), and every
// one of them gets its stream.
import { afterAll, beforeAll, expect, test } from "bun:test";
import * as path from "node:path";
import { type RelayLab, relayPids, runClient, startRelayLab, waitFor } from "./relay-helpers.ts";

let lab: RelayLab;
beforeAll(async () => {
  lab = await startRelayLab();
});
afterAll(async () => {
  await lab?.stop();
});

test("10 clients at once start exactly one relay", async () => {
  const state = path.join(lab.dir, "state");
  const client = () => runClient(lab.configFile, state, lab.nodeSocket, { send: 1000 });
  const results = await Promise.all(Array.from({ length: 10 }, client));
  for (const r of results) {
    expect(r.error).toBeUndefined();
    expect(r.backText).toMatch(/^[0-9a-f]{64} 1000\n/);
  }
  expect(results.some((r) => r.viaRelay)).toBe(true);
  // The relays that lost the lock leave within a few seconds; the one serving stays (idle time 60 s).
  await waitFor("the extra relays to leave", () => relayPids(lab.dir).length <= 1);
  expect(relayPids(lab.dir).length).toBe(1);
  // And the next client uses that one.
  const again = await runClient(lab.configFile, state, lab.nodeSocket, { send: 10 });
  expect(again.viaRelay).toBe(true);
  expect(relayPids(lab.dir).length).toBe(1);
}, 240_000);
