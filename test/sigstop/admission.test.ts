// Expected: when memory is short, stopped evaluations on one host resume one at a time, coordinated
// through a lock in the shared directory; when none fits and nothing moves for a while (here a quarter
// of --resume-max-wait), the biggest resumes anyway (still one at a time), and none waits longer
// than --resume-max-wait, so nix is never stopped forever. One that waits for memory
// does not keep the others waiting: an evaluation whose memory fits goes first. When memory is
// plentiful nobody waits.
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

const run = (shared: string, rep: string, s: string, margin: string, maxWait = "2", sleep = "1") =>
  sigstop(lab, ["--shared-dir", shared, "--resume-fast-path", "0", "--resume-margin", margin, "--resume-max-wait", maxWait, "--report", rep,
    "eval", "--store", "daemon", "--impure", "--expr", `import ${lab.expr("ifd-sleep")} { salt = "${s}"; sleep = "${sleep}"; }`]);

test("memory short: two evaluations whose builds end together resume in turn", async () => {
  const shared = path.join(lab.root, "shared");
  const [a, b] = [path.join(lab.root, "a.json"), path.join(lab.root, "b.json")];
  // Margins no host has: neither fits; after 1 s without movement the biggest goes, then the other.
  const [ra, rb] = await Promise.all([run(shared, a, salt(), "1000T", "4"), run(shared, b, salt(), "1000T", "4")]);
  expect([ra.code, rb.code]).toEqual([0, 0]);
  const waits = [report(a).resumeWaitSeconds as number, report(b).resumeWaitSeconds as number].sort();
  // The first went on the stall rule (1 s without movement), well before max-wait (4 s); the
  // second after the first's turn ended.
  expect(waits[0]!).toBeGreaterThanOrEqual(0.95);
  expect(waits[0]!).toBeLessThan(3.9);
  expect(waits[1]!).toBeGreaterThanOrEqual(waits[0]!);
  expect(waits[1]!).toBeLessThan(10);
  expect(ra.stderr + rb.stderr).toContain("resuming without room for nix to grow");
  expect(fs.statSync(shared).mode & 0o7777).toBe(0o1777);
  // Both waited for memory (the turn is not held while waiting, so the lock message may not show).
  expect(ra.stderr).toContain("waiting for memory");
  expect(rb.stderr).toContain("waiting for memory");
});

test("memory plentiful: no waiting", async () => {
  const rep = path.join(lab.root, "c.json");
  const r = await run(path.join(lab.root, "shared2"), rep, salt(), "1M");
  expect(r.code).toBe(0);
  expect(report(rep).resumeWaitSeconds as number).toBeLessThan(1);
});

test("one that waits for memory does not hold up one that fits", async () => {
  const shared = path.join(lab.root, "shared3");
  const [a, b] = [path.join(lab.root, "d.json"), path.join(lab.root, "e.json")];
  // A's build ends first, and A can never fit (it goes only after 2 s in which nothing moved); B's
  // ends a second later and fits at once. B must not queue behind A's wait.
  const [ra, rb] = await Promise.all([run(shared, a, salt(), "1000T", "8", "1"), run(shared, b, salt(), "1M", "8", "2")]);
  expect([ra.code, rb.code]).toEqual([0, 0]);
  expect(report(a).resumeWaitSeconds as number).toBeGreaterThanOrEqual(1.9);
  expect(report(b).resumeWaitSeconds as number).toBeLessThan(1.5);
  expect(ra.stderr).toContain("waiting for memory");
});
