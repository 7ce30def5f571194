// Expected: pilot-builds-per-job works on PBS too (the job script is shared by all backends): with
// pilot-builds-per-job = 2 and pilot-max-jobs = 1, four builds run in one PBS job asking for
// ncpus=2 (the lab's node has 2 CPUs), two of them at the same time; every output is correct.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import { type JobRec, overlappingInJob, salt } from "../hook-slurm/helpers.ts";
import { type PbsHookLab, startPbsHookLab } from "./lab.ts";
import { jobsOf } from "./scenarios.ts";

let lab: PbsHookLab;
beforeAll(async () => {
  lab = await startPbsHookLab("pbs-cli", "pilot-slots-pbs-cli");
  // A fresh node store made by two Nix processes at once can fail (Nix 2.8's race creating its
  // profiles link): one build first, as a real node's store exists already.
  const warm = await lab.nixBuild([lab.nix.expr("wide"), "--argstr", "salt", `warm${salt()}`, "--arg", "n", "1"]);
  expect(warm.code).toBe(0);
  lab.writeConf("pilot-idle-time = 15\npilot-max-jobs = 1\npilot-builds-per-job = 2");
}, 60 * 60_000);
afterAll(async () => {
  await lab?.cleanup();
});

test("pbs-cli: four builds in one PBS job of two slots, ncpus=2, all outputs right", async () => {
  const s = salt();
  const args = [lab.nix.expr("slots"), "--argstr", "salt", s, "--arg", "n", "4", "--argstr", "sleep", "3", "-j", "4"];
  const r = await lab.nixBuild(args, 600_000);
  if (r.code !== 0 || process.env.NSH_TEST_DEBUG) console.log(r.stderr.slice(-6000), lab.pbs.logTails(40));
  expect(r.code).toBe(0);
  const contents = r.stdout.trim().split("\n").map((o) => fs.readFileSync(o, "utf8").trim()).sort();
  expect(contents).toEqual([0, 1, 2, 3].map((i) => `slots ${i} ${s}`).sort());
  const recs = (await jobsOf(lab, s)) as unknown as JobRec[];
  const jobs = new Set(recs.map((j) => j.jobId));
  expect(jobs.size).toBe(1);
  expect(overlappingInJob(recs)).toBeGreaterThan(0);
  const job = (await lab.qstat([...jobs][0]!)) as { Resource_List?: Record<string, string> } | null;
  expect(String(job?.Resource_List?.ncpus)).toBe("2");
}, 600_000);
