// Expected: with max-queue-wait = N, a job still pending N seconds after its submit fails its build,
// the message naming the bound and the reason Slurm gave (here PartitionDown: the partition was set
// DOWN, a reason that may clear, so nsh would otherwise wait), and the job is cancelled. With the
// default (0) the same job keeps waiting.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { jobInState, jobState, jobsOf, salt } from "./helpers.ts";
import { NSH_BIN } from "../lab/cluster.ts";

let lab: ClusterLab;
beforeAll(async () => {
  lab = await startClusterLab("queue-wait");
  const r = await lab.slurm.run(["scontrol", "update", `PartitionName=${lab.slurm.partition}`, "State=DOWN"]);
  if (r.code !== 0) throw new Error(`scontrol: ${r.stderr}`);
}, 120000);
afterAll(async () => {
  await lab?.cleanup();
});

test("a job pending longer than max-queue-wait fails the build and is cancelled", async () => {
  lab.writeConf("max-queue-wait = 8");
  try {
    const s = salt();
    const t0 = performance.now();
    const r = await lab.nixBuild([lab.nix.expr("slurm-job"), "--argstr", "salt", s], 120_000);
    const ms = Math.round(performance.now() - t0);
    console.log(`max-queue-wait = 8: nix-build exited ${r.code} after ${ms} ms`);
    expect(r.timedOut).toBe(false);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/error: .*max-queue-wait.*PartitionDown/);
    expect(ms).toBeGreaterThanOrEqual(8000);
    const rec = jobsOf(lab, s)[0];
    expect(rec?.state).toBe("failed");
    expect(await jobState(lab, rec!.jobId!)).toBe("CANCELLED");
  } finally {
    lab.writeConf();
  }
}, 150000);

test("without max-queue-wait the same job keeps waiting", async () => {
  lab.writeConf();
  const s = salt();
  const p = Bun.spawn(["nix-build", "--store", "daemon", "--option", "build-hook", NSH_BIN, "--no-out-link", lab.nix.expr("slurm-job"), "--argstr", "salt", s], {
    env: lab.nix.env,
    cwd: lab.nix.root,
    stdio: ["ignore", "pipe", "pipe"],
  });
  try {
    const id = await jobInState(lab, s, "PENDING", 60_000);
    expect(id).toBeDefined();
    await Bun.sleep(15_000);
    expect(p.exitCode).toBeNull();
    expect(await jobState(lab, id!)).toBe("PENDING");
  } finally {
    p.kill("SIGKILL");
  }
}, 120000);
