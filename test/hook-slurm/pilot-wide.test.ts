// Expected: with pilot-idle-time and pilot-max-jobs = 2, a 10-wide build (Nix hands all ten to the
// hook at once: the hook's builds do not count against -j) runs in far fewer Slurm jobs than
// builds: a hook whose build is over leaves its job idle as a pilot, the next build of the same
// shape builds in it instead of submitting, and builds that find none idle at the cap wait for one.
// So (no pilot vanishing) two jobs serve all ten; the test allows up to a third of the builds.
// Every output is correct. Afterwards no pilot job lingers beyond its idle time (plus a bound).
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import { startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { jobsOf, salt, squeue, until } from "./helpers.ts";

const IDLE_S = 20;
/** Slack on a loaded machine: the agent checks its idle time every second, Slurm ends the job after. */
const BOUND_MS = 40_000;

let lab: ClusterLab;
beforeAll(async () => {
  lab = await startClusterLab("pilot-wide", "slurm");
  // A fresh node store made by two Nix processes at once can fail (Nix 2.8's race creating its
  // profiles link): one build first, as a real node's store exists already.
  const warm = await lab.nixBuild([lab.nix.expr("wide"), "--argstr", "salt", `warm${salt()}`, "--arg", "n", "1"]);
  expect(warm.code).toBe(0);
  lab.writeConf(`pilot-idle-time = ${IDLE_S}\npilot-max-jobs = 2`);
}, 120000);
afterAll(async () => {
  await lab?.cleanup();
});

test("10 builds, 2 pilots at most: at most a third as many jobs, all outputs right, pilots leave when idle", async () => {
  const s = salt();
  const t0 = Date.now();
  const r = await lab.nixBuild([lab.nix.expr("wide"), "--argstr", "salt", s, "--arg", "n", "10", "-j", "10"], 600_000);
  const seconds = (Date.now() - t0) / 1000;
  if (r.code !== 0 || process.env.NSH_TEST_DEBUG) console.log(r.stderr.slice(-6000));
  expect(r.code).toBe(0);
  const outs = r.stdout.trim().split("\n");
  expect(outs.length).toBe(10);
  const contents = outs.map((o) => fs.readFileSync(o, "utf8").trim()).sort();
  expect(contents).toEqual([...Array(10).keys()].map((i) => `wide ${i} ${s}`).sort());
  const jobs = new Set(jobsOf(lab, s).map((j) => j.jobId).filter((x): x is string => !!x));
  console.log(`10 builds in ${seconds.toFixed(1)} s in ${jobs.size} Slurm jobs`);
  if (process.env.NSH_TEST_DEBUG) for (const j of jobsOf(lab, s)) console.log(JSON.stringify(j));
  expect(jobs.size).toBeGreaterThan(0);
  expect(jobs.size).toBeLessThanOrEqual(Math.floor(10 / 3));
  // The pilots end themselves once idle: none is left in Slurm's queue.
  const gone = await until(async () => {
    const q = await squeue(lab);
    return [...jobs].some((id) => q.has(id)) ? undefined : true;
  }, IDLE_S * 1000 + BOUND_MS, 1000);
  expect(gone).toBe(true);
}, 720000);
