// Expected: with pilot-builds-per-job = 4, pilot-max-jobs = 2 and pilot-idle-time, 8 independent
// builds (-j 8, Nix hands all eight to the hook at once) run in at most 2 Slurm jobs, and builds run
// at the same time in one job (its slots): at least two builds of one job overlap in time (from
// nsh's job records: each build's upload-to-built window). Every output is correct. The jobs end
// themselves once their slots are idle.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import { startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { jobsOf, overlappingInJob, salt, squeue, until } from "./helpers.ts";

const IDLE_S = 20;
// For comparisons by hand: NSH_TEST_SLOTS=1 (one build at a time per job); the backend: NSH_TEST_BACKEND.
const K = Number(process.env.NSH_TEST_SLOTS ?? 4);
const N = 8;
/** Slack on a loaded machine: the agents check their idle time every second, Slurm ends the job after. */
const BOUND_MS = 40_000;

let lab: ClusterLab;
beforeAll(async () => {
  lab = await startClusterLab("pilot-slots");
  // A fresh node store made by two Nix processes at once can fail (Nix 2.8's race creating its
  // profiles link): one build first, as a real node's store exists already.
  const warm = await lab.nixBuild([lab.nix.expr("wide"), "--argstr", "salt", `warm${salt()}`, "--arg", "n", "1"]);
  expect(warm.code).toBe(0);
  lab.writeConf(`pilot-idle-time = ${IDLE_S}\npilot-max-jobs = 2\npilot-builds-per-job = ${K}`);
}, 120000);
afterAll(async () => {
  await lab?.cleanup();
});

test(`${N} builds, 2 jobs of ${K} slots at most: at most 2 jobs, builds overlap in a job, all outputs right`, async () => {
  const s = salt();
  const t0 = Date.now();
  const args = [lab.nix.expr("slots"), "--argstr", "salt", s, "--arg", "n", String(N), "-j", String(N)];
  const r = await lab.nixBuild(args, 600_000);
  const seconds = (Date.now() - t0) / 1000;
  if (r.code !== 0 || process.env.NSH_TEST_DEBUG) console.log(r.stderr.slice(-6000));
  expect(r.code).toBe(0);
  const outs = r.stdout.trim().split("\n");
  expect(outs.length).toBe(N);
  const contents = outs.map((o) => fs.readFileSync(o, "utf8").trim()).sort();
  expect(contents).toEqual([...Array(N).keys()].map((i) => `slots ${i} ${s}`).sort());
  const recs = jobsOf(lab, s);
  const jobs = new Set(recs.map((j) => j.jobId).filter((x): x is string => !!x));
  const pairs = overlappingInJob(recs);
  console.log(`${N} builds (K = ${K}) in ${seconds.toFixed(1)} s in ${jobs.size} Slurm jobs; ${pairs} overlapping in a job`);
  if (process.env.NSH_TEST_DEBUG) for (const j of recs) console.log(JSON.stringify(j));
  expect(jobs.size).toBeGreaterThan(0);
  expect(jobs.size).toBeLessThanOrEqual(2);
  if (K > 1) expect(pairs).toBeGreaterThan(0);
  // The jobs end themselves once every slot is idle: none is left in Slurm's queue.
  const gone = await until(async () => {
    const q = await squeue(lab);
    return [...jobs].some((id) => q.has(id)) ? undefined : true;
  }, IDLE_S * 1000 + BOUND_MS, 1000);
  expect(gone).toBe(true);
}, 720000);
