// Expected: when K-slot jobs cannot all run at once (pilot-builds-per-job = 10 asks for 10 CPUs; the
// lab's node has 16, so one job runs and the others stay pending for resources), a build whose own
// job is still pending takes a slot of the running job as soon as one is idle and cancels its
// pending job, instead of waiting for it until the running job has gone idle. So 30 builds
// (-j 30, pilot-max-jobs = 3) all build in the one job that ran (waiting instead, the builds whose
// jobs were pending would have built in them, after the running job's idle time), and no job of
// theirs is left pending.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import { startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { jobsOf, salt, squeue } from "./helpers.ts";

const IDLE_S = 30;
const N = 30;

let lab: ClusterLab;
beforeAll(async () => {
  lab = await startClusterLab("pilot-slots-pending");
  const warm = await lab.nixBuild([lab.nix.expr("wide"), "--argstr", "salt", `warm${salt()}`, "--arg", "n", "1"]);
  expect(warm.code).toBe(0);
  lab.writeConf(`pilot-idle-time = ${IDLE_S}\npilot-max-jobs = 3\npilot-builds-per-job = 10`);
}, 120000);
afterAll(async () => {
  await lab?.cleanup();
});

test(`${N} builds, jobs of 10 slots of which one fits: builds leave their pending jobs for idle slots`, async () => {
  const s = salt();
  const t0 = Date.now();
  const args = [lab.nix.expr("slots"), "--argstr", "salt", s, "--arg", "n", String(N), "--argstr", "sleep", "1", "-j", String(N)];
  const r = await lab.nixBuild(args, 600_000);
  const seconds = (Date.now() - t0) / 1000;
  if (r.code !== 0 || process.env.NSH_TEST_DEBUG) console.log(r.stderr.slice(-6000));
  expect(r.code).toBe(0);
  const contents = r.stdout.trim().split("\n").map((o) => fs.readFileSync(o, "utf8").trim()).sort();
  expect(contents).toEqual([...Array(N).keys()].map((i) => `slots ${i} ${s}`).sort());
  const jobs = new Set(jobsOf(lab, s).map((j) => j.jobId));
  console.log(`${N} builds in ${seconds.toFixed(1)} s, built in ${jobs.size} job(s)`);
  expect(jobs.size).toBe(1);
  expect([...(await squeue(lab)).values()].filter((state) => state === "PENDING")).toEqual([]);
}, 720000);
