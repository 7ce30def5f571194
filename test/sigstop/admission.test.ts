// Expected: when memory is short, stopped evaluations on one host resume one at a time, coordinated
// through a lock in the shared directory; each waits for memory at most --resume-max-wait and then
// resumes anyway, so nix is never stopped forever. When memory is plentiful nobody waits.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { startNixLab, type NixLab } from "../lab/nix.ts";
import { report, salt, sigstop } from "./helpers.ts";

let lab: NixLab;
beforeAll(async () => {
  lab = await startNixLab({ daemon: true, name: "adm" });
});
afterAll(async () => {
  await lab?.cleanup();
});

const run = (shared: string, rep: string, s: string, margin: string) =>
  sigstop(lab, ["--shared-dir", shared, "--resume-fast-path", "0", "--resume-margin", margin, "--resume-max-wait", "2", "--report", rep,
    "eval", "--store", "daemon", "--impure", "--expr", `import ${lab.expr("ifd-sleep")} { salt = "${s}"; sleep = "1"; }`]);

test("memory short: two evaluations whose builds end together resume in turn", async () => {
  const shared = path.join(lab.root, "shared");
  const [a, b] = [path.join(lab.root, "a.json"), path.join(lab.root, "b.json")];
  // Margins no host has: each resumption waits the full 2 s for memory, holding the shared lock.
  const [ra, rb] = await Promise.all([run(shared, a, salt(), "1000T"), run(shared, b, salt(), "1000T")]);
  expect([ra.code, rb.code]).toEqual([0, 0]);
  const waits = [report(a).resumeWaitSeconds as number, report(b).resumeWaitSeconds as number].sort();
  expect(waits[0]!).toBeGreaterThanOrEqual(1.9);
  // The second waited for the first's turn as well as for memory.
  expect(waits[1]!).toBeGreaterThanOrEqual(waits[0]! + 1.5);
  expect(fs.statSync(shared).mode & 0o7777).toBe(0o1777);
  expect(ra.stderr + rb.stderr).toContain("waiting for another nix-sigstop to resume first");
});

test("memory plentiful: no waiting", async () => {
  const rep = path.join(lab.root, "c.json");
  const r = await run(path.join(lab.root, "shared2"), rep, salt(), "1M");
  expect(r.code).toBe(0);
  expect(report(rep).resumeWaitSeconds as number).toBeLessThan(0.5);
});
