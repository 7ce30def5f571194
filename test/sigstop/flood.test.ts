// Expected: a build that floods its log while nix is stopped does not grow the wrapper's memory:
// the proxy holds at most its bound (then stops reading the daemon), lets nix run just long enough
// to drain the backlog, and the evaluation completes with every byte delivered.
import { afterAll, beforeAll, expect, test } from "bun:test";
import path from "node:path";
import { startNixLab, type NixLab } from "../lab/nix.ts";
import { report, salt, sigstop } from "./helpers.ts";

let lab: NixLab;
beforeAll(async () => {
  lab = await startNixLab({ daemon: true, name: "flood" });
});
afterAll(async () => {
  await lab?.cleanup();
});

test("a 50 MB log flood while stopped keeps the proxy within its bound", async () => {
  const rep = path.join(lab.root, "flood.json");
  const s = salt();
  const bound = 1 << 20;
  const r = await sigstop(lab, ["--buffer-size", "1M", "--report", rep, "eval", "--store", "daemon", "--impure", "--expr", `import ${lab.expr("ifd-flood")} { salt = "${s}"; }`]);
  expect(r.code).toBe(0);
  expect(r.stdout.trim()).toBe(`"flood-${s}"`);
  const { proxy, stops } = report(rep);
  expect(stops).toBe(1);
  expect(report(rep).drainResumes as number).toBeGreaterThan(0);
  // The flood really went through the proxy...
  expect(proxy!.bytesToClient).toBeGreaterThan(40e6);
  // ...yet never more than the bound plus one read was queued, and the guard stayed small.
  expect(proxy!.peakQueuedBytes).toBeLessThan(bound + 512 * 1024);
  expect(proxy!.peakRssBytes).toBeLessThan(150 * 1024 * 1024);
}, 120000);
