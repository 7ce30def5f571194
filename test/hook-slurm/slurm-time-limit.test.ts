// Expected: a build whose Slurm job reaches its time limit (here time_limit = 1 minute from the
// derivation's extraSlurmParams, Slurm's smallest; no Nix timeout) is a failed build, not a hang
// and not a stack trace: Slurm ends the job (state TIMEOUT, reason TimeLimit), the agent's serve
// session and the builder die with it, and nsh says "job <id> reached its Slurm time limit of
// 1 min" with how to get more time; the hook exits 101 (a timed-out build: through the daemon Nix
// 2.8 says "failed with exit code 101" and nix-build exits 1; Nix >= 2.29 reads no status, nsh
// exits 1). The builder is gone from the node,
// and `nsh jobs` records the job as failed with the same message.
//
// Cost, decided: this test takes 60–95 s. Slurm 22.05 has no limit under 1 minute, and
// slurmctld checks time limits on a 30 s period, so the job ends 60–90 s after it started; the
// lab's slurm.conf has KillWait=2 (SIGTERM → SIGKILL; default 30 s) and no OverTimeLimit (default
// 0: no grace past the limit). A shorter test cannot reach a real TIMEOUT; the mapping from a
// TIMEOUT job to message and status is also table-tested in test/unit/job-end.test.ts.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { hookTimeoutStatus } from "../lab/nix-words.ts";
import { hasStackTrace, jobsOf, salt, showJob, squeue, until } from "./helpers.ts";

let lab: ClusterLab;
beforeAll(async () => {
  lab = await startClusterLab("timelimit");
}, 120000);
afterAll(async () => {
  await lab?.cleanup();
});

const running = async (pattern: string) => (await lab.slurm.run(["pgrep", "-f", pattern])).stdout.trim() !== "";

test("a job past its Slurm time limit fails the build naming the limit and the job", async () => {
  const s = salt();
  const sleep = `300.${Math.floor(Math.random() * 9000 + 1000)}`;
  const params = JSON.stringify({ comment: `nsh-test-${s}`, time_limit: 1 });
  const t0 = performance.now();
  const build = lab.nixBuild([lab.nix.expr("slurm-job"), "--argstr", "salt", s, "--argstr", "script", `echo started-${s}; /bin/sleep ${sleep}`, "--argstr", "params", params], 150000);
  expect(await until(async () => ((await running(`sleep ${sleep}`)) ? true : undefined), 30000)).toBe(true);
  const r = await build;
  const ms = performance.now() - t0;
  console.log(`Slurm time limit: nix-build exited ${r.code} after ${Math.round(ms)} ms`);
  console.log(/Slurm time limit/.test(r.stderr) ? r.stderr.split("\n").filter((l) => /time limit|exit code/.test(l)).join("\n") : r.stderr);
  expect(r.timedOut).toBe(false);
  expect(r.code).toBe(1);
  const [rec] = jobsOf(lab, s);
  const id = rec!.jobId!;
  expect(r.stderr).toContain(`started-${s}`);
  expect(r.stderr).toContain(`job ${id} reached its Slurm time limit of 1 min and Slurm ended it (TIMEOUT: TimeLimit) while nsh built in it`);
  expect(r.stderr).toContain(`failed with exit code ${hookTimeoutStatus(lab.nix.nixVersionNumbers)}`);
  expect(hasStackTrace(r.stderr)).toBe(false);
  // Not a hang: Slurm's limit plus its 30 s check period and KillWait, plus a few seconds of nsh.
  expect(ms).toBeGreaterThan(55000);
  expect(ms).toBeLessThan(110000);
  // The builder died with the job; Slurm has the job as TIMEOUT; nsh's record says why.
  expect(await until(async () => ((await running(`sleep ${sleep}`)) ? undefined : true), 10000)).toBe(true);
  expect((await squeue(lab)).has(id)).toBe(false);
  const job = await showJob(lab, id);
  expect(job.JobState).toBe("TIMEOUT");
  expect(job.Reason).toBe("TimeLimit");
  expect(job.TimeLimit).toBe("00:01:00");
  expect(rec?.state).toBe("failed");
  expect(rec?.message).toContain(`job ${id} reached its Slurm time limit of 1 min`);
  console.log(`job ${id}: ${job.JobState}, RunTime ${job.RunTime}, TimeLimit ${job.TimeLimit}`);
}, 150000);
