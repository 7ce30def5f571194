// Expected: when memory is short, stopped evaluations on one host resume one at a time, coordinated
// through a lock in the shared directory; when none fits and nothing moves for a while (here a quarter
// of --resume-max-wait), the biggest resumes anyway (still one at a time), and none waits longer
// than --resume-max-wait, so nix is never stopped forever. One that waits for memory
// does not keep the others waiting: an evaluation whose memory fits goes first. When memory is
// plentiful nobody waits. The shared directory the runs made is theirs alone.
// Bounds come from what admission promises, with room for a loaded machine: --resume-max-wait is 40 s
// here, so the stall rule (a quarter of it: 10 s) and max-wait are far apart, and "at once" is told
// from "after a stall" by seconds, not by milliseconds.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { startNixLab, type NixLab } from "../lab/nix.ts";
import { report, salt, sigstop } from "./helpers.ts";

const MAX_WAIT = 40;
const STALL = MAX_WAIT / 4; // admission.ts: min(STALL_MS = 15 s, max-wait / 4)

let lab: NixLab;
beforeAll(async () => {
  lab = await startNixLab({ daemon: true, name: "adm" });
});
afterAll(async () => {
  await lab?.cleanup();
});

const run = (shared: string, rep: string, s: string, margin: string, sleep = "1") =>
  sigstop(lab, ["--shared-dir", shared, "--resume-fast-path", "0", "--resume-margin", margin, "--resume-max-wait", String(MAX_WAIT), "--report", rep,
    "eval", "--store", "daemon", "--impure", "--expr", `import ${lab.expr("ifd-sleep")} { salt = "${s}"; sleep = "${sleep}"; }`]);

const waited = (rep: string) => report(rep).resumeWaitSeconds as number;

test("memory short: two evaluations whose builds end together resume in turn", async () => {
  const shared = path.join(lab.root, "shared");
  const [a, b] = [path.join(lab.root, "a.json"), path.join(lab.root, "b.json")];
  // Margins no host has: neither fits; after STALL s without movement the biggest goes, then the other.
  const [ra, rb] = await Promise.all([run(shared, a, salt(), "1000T"), run(shared, b, salt(), "1000T")]);
  expect([ra.code, rb.code]).toEqual([0, 0]);
  const waits = [waited(a), waited(b)].sort((x, y) => x - y);
  // The first went on the stall rule, not before it and before max-wait; the second after the first's
  // turn ended, and no later than max-wait (twice it: room for a loaded machine, still not "never").
  expect(waits[0]!).toBeGreaterThanOrEqual(STALL - 0.05);
  expect(waits[0]!).toBeLessThan(MAX_WAIT);
  expect(waits[1]!).toBeGreaterThanOrEqual(waits[0]!);
  expect(waits[1]!).toBeLessThan(2 * MAX_WAIT);
  expect(ra.stderr + rb.stderr).toContain("resuming without room for nix to grow");
  const st = fs.lstatSync(shared);
  expect([st.isDirectory(), st.uid, st.mode & 0o022]).toEqual([true, process.geteuid!(), 0]);
  // Both waited for memory (the turn is not held while waiting, so the lock message may not show).
  expect(ra.stderr).toContain("waiting for memory");
  expect(rb.stderr).toContain("waiting for memory");
}, 120000);

test("memory plentiful: no waiting", async () => {
  const rep = path.join(lab.root, "c.json");
  const r = await run(path.join(lab.root, "shared2"), rep, salt(), "1M");
  expect(r.code).toBe(0);
  // Fits at the first look; one that did not fit would wait STALL s at least.
  expect(waited(rep)).toBeLessThan(STALL / 2);
  expect(r.stderr).not.toContain("waiting for memory");
});

test("one that waits for memory does not hold up one that fits", async () => {
  const shared = path.join(lab.root, "shared3");
  const [a, b] = [path.join(lab.root, "d.json"), path.join(lab.root, "e.json")];
  // A's build ends first, and A can never fit (it goes only after STALL s in which nothing moved); B's
  // ends a second later and fits at once. Queued behind A, B would wait about A's wait less that second.
  const [ra, rb] = await Promise.all([run(shared, a, salt(), "1000T", "1"), run(shared, b, salt(), "1M", "2")]);
  expect([ra.code, rb.code]).toEqual([0, 0]);
  expect(waited(a)).toBeGreaterThanOrEqual(STALL - 0.05);
  expect(waited(b)).toBeLessThan(waited(a) / 2);
  expect(ra.stderr).toContain("waiting for memory");
}, 120000);
