// Expected: a derivation's extraSlurmParams (JSON from builtins.toJSON) is merged into the job
// nsh submits: `scontrol show job` shows its Comment and cpus_per_task (NumCPUs=2, CPUs/Task=2).
// nsh.conf's slurm-extra-submission-params is merged over it key by key and wins where both set
// the same key (the comment), while the derivation's other keys (cpus_per_task) stay.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import { startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { jobsOf, salt, showJob } from "./helpers.ts";

let lab: ClusterLab;
beforeAll(async () => {
  lab = await startClusterLab("params");
}, 120000);
afterAll(async () => {
  await lab?.cleanup();
});

async function buildAndShow(s: string, cpus: number) {
  const r = await lab.nixBuild([lab.nix.expr("slurm-job"), "--argstr", "salt", s, "--arg", "cpus", String(cpus)]);
  if (r.code !== 0) console.log(r.stderr);
  expect(r.code).toBe(0);
  expect(fs.readFileSync(r.stdout.trim(), "utf8")).toBe(`job ${s}\n`);
  const [rec] = jobsOf(lab, s);
  expect(rec?.state).toBe("succeeded");
  return showJob(lab, rec!.jobId!);
}

test("the derivation's extraSlurmParams reach the job", async () => {
  lab.writeConf();
  const s = salt();
  const job = await buildAndShow(s, 2);
  expect(job.Comment).toBe(`nsh-test-${s}`);
  expect(job.NumCPUs).toBe("2");
  expect(job["CPUs/Task"]).toBe("2");
}, 120000);

test("slurm-extra-submission-params wins over the derivation's, key by key", async () => {
  const s = salt();
  lab.writeConf(`slurm-extra-submission-params = {"comment": "from-conf-${s}"}`);
  try {
    const job = await buildAndShow(s, 2);
    expect(job.Comment).toBe(`from-conf-${s}`);
    // The derivation's other keys are kept.
    expect(job["CPUs/Task"]).toBe("2");
  } finally {
    lab.writeConf();
  }
}, 120000);

test("slurm-extra-submission-params' cpus_per_task overrides the derivation's", async () => {
  const s = salt();
  lab.writeConf(`slurm-extra-submission-params = {"cpus_per_task": 1}`);
  try {
    const job = await buildAndShow(s, 2);
    expect(job.Comment).toBe(`nsh-test-${s}`);
    expect(job["CPUs/Task"]).toBe("1");
    expect(job.NumCPUs).toBe("1");
  } finally {
    lab.writeConf();
  }
}, 120000);
