// Expected: in a pilot job of 4 slots (pilot-builds-per-job = 4, pilot-max-jobs = 1) one of four
// builds running at once fails (its builder exits 1): Nix reports that one failure, and the three
// other builds in the same job go on and succeed (nix-build --keep-going). The failed build ends
// nothing but itself: the job is not cancelled under its siblings. Building the set again (the
// failing one fixed) builds only that one: the three outputs are there and right.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import { startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { jobsOf, salt } from "./helpers.ts";

let lab: ClusterLab;
beforeAll(async () => {
  lab = await startClusterLab("pilot-slots-fail", "slurm");
  // A fresh node store made by two Nix processes at once can fail (Nix 2.8's race creating its
  // profiles link): one build first, as a real node's store exists already.
  const warm = await lab.nixBuild([lab.nix.expr("wide"), "--argstr", "salt", `warm${salt()}`, "--arg", "n", "1"]);
  expect(warm.code).toBe(0);
  lab.writeConf("pilot-idle-time = 20\npilot-max-jobs = 1\npilot-builds-per-job = 4");
}, 120000);
afterAll(async () => {
  await lab?.cleanup();
});

test("one of four builds in one job fails: the three others in that job succeed", async () => {
  const s = salt();
  const args = (fail: number) =>
    [lab.nix.expr("slots"), "--argstr", "salt", s, "--arg", "n", "4", "--argstr", "sleep", "6", "--arg", "fail", String(fail)];
  const r = await lab.nixBuild([...args(2), "-j", "4", "--keep-going"], 600_000);
  if (process.env.NSH_TEST_DEBUG) console.log(r.stderr.slice(-6000));
  expect(r.code).not.toBe(0);
  expect(r.stderr).toContain("failing on purpose");
  const recs = jobsOf(lab, s);
  if (process.env.NSH_TEST_DEBUG) for (const j of recs) console.log(JSON.stringify(j));
  const failed = recs.filter((j) => j.state === "failed");
  const succeeded = recs.filter((j) => j.state === "succeeded");
  expect(failed.length).toBe(1);
  expect(failed[0]!.drv).toContain(`slots-${s}-2`);
  expect(succeeded.length).toBe(3);
  // all four in one job: the siblings built beside the failure
  expect(new Set(recs.map((j) => j.jobId)).size).toBe(1);

  const again = await lab.nixBuild([...args(-1), "-j", "4"], 600_000);
  if (again.code !== 0) console.log(again.stderr.slice(-4000));
  expect(again.code).toBe(0);
  const contents = again.stdout.trim().split("\n").map((o) => fs.readFileSync(o, "utf8").trim()).sort();
  expect(contents).toEqual([0, 1, 2, 3].map((i) => `slots ${i} ${s}`).sort());
  expect(jobsOf(lab, s).length).toBe(recs.length + 1);
}, 720000);
