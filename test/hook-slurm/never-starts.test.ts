// Expected: a job Slurm accepts but can never start fails its build instead of waiting forever:
// asking for more CPUs per task than any node of the partition has keeps the job PENDING with
// reason PartitionConfig, and more nodes than the partition has with PartitionNodeLimit (Slurm
// 22.05 accepts both; an unknown --constraint feature is refused at submit instead). nix-build
// fails naming Slurm's reason, and the job is cancelled: none is left in the queue. Slurm 24.11 (seen on
// 24.11.5) refuses both at submit instead ("Requested node configuration is not available"): the build
// fails at once naming that, and there is no job; 22.05 and 26.05 accept and keep them pending.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { confWith, hasStackTrace, jobState, jobsOf, salt } from "./helpers.ts";

let lab: ClusterLab;
beforeAll(async () => {
  lab = await startClusterLab("never");
}, 120000);
afterAll(async () => {
  await lab?.cleanup();
});

test.each([
  ["more CPUs per task than the node has", { cpus_per_task: 1000 }, "PartitionConfig"],
  ["more nodes than the partition has", { nodes: "2" }, "PartitionNodeLimit"],
] as const)("%s: the build fails naming Slurm's reason, the job is cancelled", async (_what, params, reason) => {
  // The owner's setting is unrestricted; a derivation's extraSlurmParams take the same wait loop.
  confWith(lab, { "slurm-extra-submission-params": JSON.stringify(params) });
  try {
    const s = salt();
    const t0 = performance.now();
    const r = await lab.nixBuild([lab.nix.expr("slurm-job"), "--argstr", "salt", s], 180_000);
    console.log(`${reason}: nix-build exited ${r.code} after ${Math.round(performance.now() - t0)} ms`);
    if (!r.timedOut) console.log(r.stderr.split("\n").filter((l) => l.includes(reason)).join("\n"));
    // The build ended by itself (it was not the test's bound that stopped a wait forever) and failed.
    expect(r.timedOut).toBe(false);
    expect(r.code).not.toBe(0);
    expect(hasStackTrace(r.stderr)).toBe(false);
    const rec = jobsOf(lab, s)[0];
    if (lab.slurm.slurmVersionNumbers[0] === 24) {
      expect(r.stderr).toMatch(/error: .*Slurm refused the job .*Requested node configuration is not available/);
      expect(rec?.jobId).toBeUndefined();
      return;
    }
    expect(r.stderr).toMatch(new RegExp(`error: .*${reason}`));
    expect(rec?.jobId).toBeDefined();
    expect(rec?.state).toBe("failed");
    expect(await jobState(lab, rec!.jobId!)).toBe("CANCELLED");
  } finally {
    lab.writeConf();
  }
}, 200000);
