// Expected: a derivation's extraSlurmParams may set only resource and placement fields. One that
// sets the job's `environment`, `script` or `current_working_directory` fails its build at once,
// with an nsh error naming the derivation, the attribute and the key (and how to allow it), and no
// job is submitted (Slurm never sees one). Allowed keys still reach the job (scontrol show job). A
// site widens the list with `extra-derivation-params-allow` (the key then reaches the job) or
// narrows it with `derivation-params-allow`; the machine owner's slurm-extra-submission-params is
// not restricted.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import { startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { hasStackTrace, jobsOf, salt, showJob } from "./helpers.ts";

let lab: ClusterLab;
beforeAll(async () => {
  lab = await startClusterLab("refused");
}, 120000);
afterAll(async () => {
  await lab?.cleanup();
});

const build = (s: string, params: Record<string, unknown>) =>
  lab.nixBuild([lab.nix.expr("slurm-job"), "--argstr", "salt", s, "--argstr", "params", JSON.stringify({ comment: `nsh-test-${s}`, ...params })]);

/** Every job Slurm knows (queued, running or finished within MinJobAge) whose name mentions `s`. */
async function slurmJobsNamed(s: string): Promise<string[]> {
  const r = await lab.slurm.run(["squeue", "-h", "-t", "all", "-o", "%i %j"]);
  return r.stdout.split("\n").filter((l) => l.includes(s));
}

async function expectRefused(s: string, params: Record<string, unknown>, key: string) {
  const r = await build(s, params);
  if (process.env.SHOW || r.code === 0 || !r.stderr.includes(`'${key}'`)) console.log(r.stderr);
  expect(r.timedOut).toBe(false);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(new RegExp(`nsh: error: .*job-${s}\\.drv: attribute extraSlurmParams sets the key '${key}', which a derivation may not set`));
  expect(r.stderr).toContain(`extra-derivation-params-allow = ${key}`);
  expect(hasStackTrace(r.stderr)).toBe(false);
  // Nothing reached Slurm, and nsh recorded no job for it.
  expect(await slurmJobsNamed(s)).toEqual([]);
  expect(jobsOf(lab, s).every((j) => j.jobId === undefined)).toBe(true);
}

async function expectBuilt(s: string, params: Record<string, unknown>) {
  const r = await build(s, params);
  if (r.code !== 0) console.log(r.stderr);
  expect(r.code).toBe(0);
  expect(fs.readFileSync(r.stdout.trim(), "utf8")).toBe(`job ${s}\n`);
  const [rec] = jobsOf(lab, s);
  expect(rec?.jobId).toBeDefined();
  return showJob(lab, rec!.jobId!);
}

test.each([
  ["environment", { environment: { LD_PRELOAD: "/tmp/evil.so", PATH: "/tmp/evil" } }],
  ["script", { script: "#!/bin/sh\necho owned > $HOME/owned\n" }],
  ["current_working_directory", { cpus_per_task: 1, current_working_directory: "/" }],
])("extraSlurmParams setting %p: the build fails naming it, no job is submitted", async (key, params) => {
  lab.writeConf();
  await expectRefused(salt(), params, key);
}, 120000);

test("allowed keys still reach the job", async () => {
  lab.writeConf();
  const s = salt();
  const job = await expectBuilt(s, { cpus_per_task: 2, partition: "debug", time_limit: 7 });
  expect(job["CPUs/Task"]).toBe("2");
  expect(job.Partition).toBe("debug");
  expect(job.TimeLimit).toBe("00:07:00");
  expect(job.Comment).toBe(`nsh-test-${s}`);
}, 120000);

test("a site widens the list with extra-derivation-params-allow: the key reaches the job", async () => {
  lab.writeConf();
  await expectRefused(salt(), { mail_user: "builds@example.invalid" }, "mail_user");
  lab.writeConf("extra-derivation-params-allow = mail_user mail_type");
  try {
    const job = await expectBuilt(salt(), { mail_user: "builds@example.invalid", mail_type: "END", cpus_per_task: 2 });
    expect(job.MailUser).toBe("builds@example.invalid");
    // The built-in list still holds.
    expect(job["CPUs/Task"]).toBe("2");
  } finally {
    lab.writeConf();
  }
}, 120000);

test("a site narrows the list with derivation-params-allow", async () => {
  lab.writeConf("derivation-params-allow = comment");
  try {
    await expectRefused(salt(), { cpus_per_task: 2 }, "cpus_per_task");
  } finally {
    lab.writeConf();
  }
}, 120000);

test("the machine owner's slurm-extra-submission-params is not restricted", async () => {
  lab.writeConf(`slurm-extra-submission-params = {"mail_user": "site@example.invalid", "mail_type": "END"}`);
  try {
    const job = await expectBuilt(salt(), {});
    expect(job.MailUser).toBe("site@example.invalid");
  } finally {
    lab.writeConf();
  }
}, 120000);
