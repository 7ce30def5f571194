// Expected: with pilot-idle-time set, a chain of derivations (top needs dep: Nix hands the hook dep,
// then top once dep is built) runs in one Slurm job: top's build takes dep's idle job instead of
// submitting. The output is right.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import { startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { jobsOf, salt } from "./helpers.ts";

let lab: ClusterLab;
beforeAll(async () => {
  lab = await startClusterLab("pilot-chain", "slurm");
  lab.writeConf("pilot-idle-time = 30");
}, 120000);
afterAll(async () => {
  await lab?.cleanup();
});

test("a two-derivation chain builds in one job", async () => {
  const s = salt();
  const r = await lab.nixBuild([lab.nix.expr("chain"), "--argstr", "salt", s], 300_000);
  if (r.code !== 0) console.log(r.stderr.slice(-3000));
  expect(r.code).toBe(0);
  expect(fs.readFileSync(r.stdout.trim(), "utf8").trim()).toBe(`top dep-${s}`);
  const recs = jobsOf(lab, s);
  expect(recs.length).toBe(2);
  expect(new Set(recs.map((j) => j.jobId)).size).toBe(1);
}, 600_000);
