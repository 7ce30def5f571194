// Expected: the cluster's state directory loses bin/ (a scratch purge) between builds, then a
// nix-build -j 8 of 8 independent derivations asks 8 hooks at once, each remembering the agent
// as placed. Every build succeeds (jobs that may have started without the binary are replaced,
// never reported as failures), and the 114 MB agent is uploaded once, not by every hook: the
// others wait for that upload under the cluster-side lock and then send nothing.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { jobsOf, salt, squeue, type JobRec } from "./helpers.ts";

let lab: ClusterLab;
beforeAll(async () => {
  lab = await startClusterLab("agent-purge");
}, 120000);
afterAll(async () => {
  await lab?.cleanup();
});

const uploaded = (j: JobRec) => (j as JobRec & { marks?: Record<string, number> }).marks?.["agent-uploaded"] !== undefined;

test("bin/ purged before a wide build: all 8 builds succeed, the agent is uploaded once", async () => {
  const first = salt();
  const r1 = await lab.nixBuild([lab.nix.expr("slurm-job"), "--argstr", "salt", first]);
  expect(r1.code).toBe(0);
  expect(jobsOf(lab, first).filter(uploaded)).toHaveLength(1);
  fs.rmSync(path.join(lab.clusterState, "bin"), { recursive: true, force: true });

  const s = salt();
  const r = await lab.nixBuild([lab.nix.expr("wide"), "--argstr", "salt", s, "-j", "8"], 600000);
  if (r.code !== 0) console.log(r.stderr);
  expect(r.code).toBe(0);
  const jobs = jobsOf(lab, s);
  const builds = new Set(jobs.map((j) => j.drv));
  expect(builds.size).toBe(8);
  expect(jobs.map((j) => j.state)).toEqual(Array(8).fill("succeeded"));
  expect(jobs.filter(uploaded)).toHaveLength(1);
  expect([...(await squeue(lab)).keys()]).toEqual([]);
}, 700000);
