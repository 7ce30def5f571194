// Expected, with nsh configured both as the build hook and as an external builder for the same system
// (Nix 2.34, NSH_LAB_SUITE=sid; skips on a Nix without external-builders): Nix asks the hook first,
// so each derivation nsh takes is built once, by the hook, as one job (never a second one by the
// external builder). A derivation the hook declines (a feature the cluster lacks) then reaches the
// external builder, which cannot decline: the build fails naming the reason and saying why it was
// not built locally, with no job. A preferLocalBuild derivation, which Nix never offers a hook, goes
// to the external builder even though Nix could build it itself: one job. And the job's node, whose
// Nix reads the same nix.conf, builds the derivation itself rather than handing it to nsh again.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import { hasStackTrace, jobsOf, salt } from "./helpers.ts";
import { type ExternalBuilderLab, startExternalBuilderLab, SYSTEM } from "./external-builder-suite.ts";

let x: ExternalBuilderLab;
beforeAll(async () => {
  x = await startExternalBuilderLab("xb-hook", "slurm", true);
}, 180_000);
afterAll(async () => {
  await x?.lab.cleanup();
});
const slurmJobsNamed = async (s: string) =>
  (await x.lab.slurm.run(["squeue", "-h", "-t", "all", "-o", "%i %j"])).stdout.split("\n").filter((l) => l.includes(s));

test("the hook builds what it takes: one job per derivation, none from the external builder", async () => {
  if (!x.supported) return console.log(`skipped: ${x.lab.nix.nixVersion} has no external-builders`);
  const s = salt();
  const r = await x.nixBuild([x.lab.nix.expr("chain"), "--argstr", "salt", s]);
  if (r.code !== 0) console.log(r.stderr);
  expect(r.code).toBe(0);
  expect(fs.readFileSync(r.stdout.trim(), "utf8").trim()).toBe(`top dep-${s}`);
  // Nix's own line for a hook build names the machine; the external builder's would be nsh's.
  expect(r.stderr).toMatch(new RegExp(`^building '[^']*-top-${s}\\.drv' on '${x.lab.machine}'`, "m"));
  expect(r.stderr).not.toContain("nsh: building");
  expect(jobsOf(x.lab, s).map((j) => j.state)).toEqual(["succeeded", "succeeded"]);
  expect(await slurmJobsNamed(s)).toHaveLength(2);
}, 200_000);

test("what the hook declines fails in the external builder with the reason, no job", async () => {
  if (!x.supported) return;
  const s = salt();
  const expr = `derivation { name = "nofeat-${s}"; system = "${SYSTEM}"; builder = "/bin/sh"; ` +
    `args = ["-c" "echo x > $out"]; requiredSystemFeatures = ["gpu"]; }`;
  const r = await x.nixBuild(["-E", expr]);
  if (r.code === 0) console.log(r.stderr);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toContain("requires the feature 'gpu'");
  expect(r.stderr).toContain("external-builders");
  expect(hasStackTrace(r.stderr)).toBe(false);
  expect(jobsOf(x.lab, s)).toEqual([]);
  expect(await slurmJobsNamed(s)).toEqual([]);
}, 200_000);

test("a preferLocalBuild derivation skips the hook: the external builder builds it as one job", async () => {
  if (!x.supported) return;
  const s = salt();
  const expr = `derivation { name = "local-${s}"; system = "${SYSTEM}"; builder = "/bin/sh"; ` +
    `args = ["-c" "echo local-${s} > $out"]; preferLocalBuild = true; }`;
  const r = await x.nixBuild(["-E", expr]);
  if (r.code !== 0) console.log(r.stderr);
  expect(r.code).toBe(0);
  expect(fs.readFileSync(r.stdout.trim(), "utf8").trim()).toBe(`local-${s}`);
  expect(r.stderr).toContain("nsh: building");
  expect(jobsOf(x.lab, s).map((j) => j.state)).toEqual(["succeeded"]);
}, 200_000);
