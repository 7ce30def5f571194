// Expected: Nix's `timeout` is enforced where the build runs. nsh passes it with BuildDerivation to
// the node's `nix-store --serve` (inside the Slurm job), which kills a builder that sleeps 60 s
// after ~5 s and answers TimedOut with Nix's own message ("timed out after 5 seconds"); the hook
// exits 101, so Nix records a timed-out build:
//   - nix-build on the local store (the hook is nix-build's own child) exits 101, like a local
//     build that times out;
//   - through the daemon Nix 2.8 exits 1 (the worker protocol does not carry the status), exactly
//     as for its own local build that times out, checked here side by side; Nix says the builder
//     "failed with exit code 101".
// On Nix ≥ 2.29 the hook's status no longer tells a timeout apart (nix-protocols.md §1.5): nsh's own
// line says "timed out after 5 seconds", Nix says "failed with exit code 1" and nix-build exits 1 on
// the local store too (test/lab/nix-words.ts).
// The builder is gone from the node at once, the job is gone from squeue (it ends as COMPLETED:
// the agent, not Slurm, ended it), its time limit is Nix's timeout rounded up to minutes plus
// nsh's margin, and `nsh jobs` records the job as failed with the timeout in plain text.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { JOB_TIME_MARGIN_MINUTES } from "../../src/hook/job-end.ts";
import { NSH_BIN, startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { hookTimeoutExit, hookTimeoutStatus } from "../lab/nix-words.ts";
import { hasStackTrace, jobsOf, salt, showJob, squeue, until } from "./helpers.ts";

let lab: ClusterLab;
beforeAll(async () => {
  lab = await startClusterLab("timeout");
}, 120000);
afterAll(async () => {
  await lab?.cleanup();
});

/** The builder's sleep, made unique so it can be looked for on the node afterwards. */
const sleeper = () => `60.${Math.floor(Math.random() * 9000 + 1000)}`;
const running = async (pattern: string) => (await lab.slurm.run(["pgrep", "-f", pattern])).stdout.trim() !== "";

/** What every timed-out build through nsh must leave: no builder, no job, a record saying so. */
async function expectCleanEnd(s: string, sleep: string, t0: number) {
  expect(await until(async () => ((await running(`sleep ${sleep}`)) ? undefined : true), 5000)).toBe(true);
  const [rec] = jobsOf(lab, s);
  expect(rec?.state).toBe("failed");
  // The node's Nix's words: "building of '<drv>!out' from in-memory derivation timed out after 5 seconds" up to
  // 2.28, "timed out after 5 seconds" on 2.34.
  expect(rec?.message).toMatch(/^(building of '.*' from in-memory derivation )?timed out after 5 seconds$/);
  expect(rec?.phases.build).toBeGreaterThanOrEqual(4.5);
  expect(rec?.phases.build).toBeLessThan(15);
  const id = rec!.jobId!;
  expect(await until(async () => ((await squeue(lab)).has(id) ? undefined : true), 10000)).toBe(true);
  const job = await showJob(lab, id);
  expect(job.JobState).toBe("COMPLETED");
  expect(job.TimeLimit).toBe(`00:0${1 + JOB_TIME_MARGIN_MINUTES}:00`);
  console.log(`job ${id}: ${job.JobState}, RunTime ${job.RunTime}, TimeLimit ${job.TimeLimit}; nix-build took ${Math.round(performance.now() - t0)} ms`);
}

test("timeout 5 through the daemon: killed on the node after ~5 s, Nix's message, like a local timeout", async () => {
  const s = salt();
  const sleep = sleeper();
  const t0 = performance.now();
  const build = lab.nixBuild([lab.nix.expr("slurm-job"), "--argstr", "salt", s, "--argstr", "script", `echo started-${s}; /bin/sleep ${sleep}`, "--option", "timeout", "5"]);
  // The builder does run (so its absence afterwards means it was killed).
  expect(await until(async () => ((await running(`sleep ${sleep}`)) ? true : undefined), 20000)).toBe(true);
  const r = await build;
  const ms = performance.now() - t0;
  if (!/timed out after 5 seconds/.test(r.stderr)) console.log(r.stderr);
  expect(r.timedOut).toBe(false);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain(`started-${s}`);
  expect(r.stderr).toMatch(/timed out after 5 seconds/);
  expect(r.stderr).not.toMatch(/of silence/);
  expect(r.stderr).toContain(`failed with exit code ${hookTimeoutStatus(lab.nix.nixVersionNumbers)}`);
  expect(hasStackTrace(r.stderr)).toBe(false);
  expect(ms).toBeLessThan(30000);
  await expectCleanEnd(s, sleep, t0);

  // Nix's own local build that times out, through the same daemon: the same exit status.
  const local = await lab.nix.run(["nix-build", "--store", "daemon", "--no-out-link", "--option", "timeout", "3", "-E", `builtins.derivation { name = "local-${s}"; system = builtins.currentSystem; builder = "/bin/sh"; args = ["-c" "/bin/sleep 60"]; }`]);
  expect(local.stderr).toMatch(/timed out after 3 seconds/);
  expect(local.code).toBe(r.code);
}, 120000);

test("--timeout 5 on the local store: nix-build exits 101 (Nix's TimedOut; 1 on Nix >= 2.29)", async () => {
  const s = salt();
  const sleep = sleeper();
  const t0 = performance.now();
  // No daemon: the hook is nix-build's child, with the daemon's nsh settings.
  const r = await lab.nix.run(
    ["nix-build", "--store", "local", "--option", "build-hook", NSH_BIN, "--no-out-link", lab.nix.expr("slurm-job"), "--argstr", "salt", s, "--argstr", "script", `/bin/sleep ${sleep}`, "--timeout", "5"],
    { env: { NSH_CONF: lab.nshConf }, timeoutMs: 120000 },
  );
  const want = hookTimeoutExit(lab.nix.nixVersionNumbers, "local store");
  if (r.code !== want) console.log(r.stderr);
  expect(r.code).toBe(want);
  expect(r.stderr).toMatch(/timed out after 5 seconds/);
  expect(hasStackTrace(r.stderr)).toBe(false);
  await expectCleanEnd(s, sleep, t0);
}, 120000);
