// Expected: a job's tag always reaches its comment (whatever extraSlurmParams say, keeping a comment
// the user set), and a GET /jobs reply yields exactly the unfinished jobs carrying the tag, in both
// the v0.0.38 (state string) and newer (state list) shapes.
import { expect, test } from "bun:test";
import type { JobSpec } from "../../src/schedulers/scheduler.ts";
import { buildSubmitRequest, taggedJobs } from "../../src/schedulers/slurm-rest-shapes.ts";

const spec = (extra?: JobSpec["extra"]): JobSpec => ({ name: "n", script: "#!/bin/sh\n", workingDirectory: "/w", environment: { PATH: "/bin" }, tag: "nsh:k1", ...(extra ? { extra } : {}) });
const comment = (req: Record<string, unknown>) => ((req.job as Record<string, unknown>).comment);

test.each([
  ["no comment of the user's", undefined, undefined, "nsh:k1"],
  ["a comment in extraSlurmParams", { comment: "project X" }, undefined, "project X nsh:k1"],
  ["a comment in the setting", undefined, { comment: "site" }, "site nsh:k1"],
  ["a comment that already carries the tag", { comment: "nsh:k1 mine" }, undefined, "nsh:k1 mine"],
  ["null deletes the user's comment, not the tag", { comment: null }, undefined, "nsh:k1"],
] as const)("comment: %s", (_what, drv, setting, want) => {
  for (const v of ["v0.0.38", "v0.0.41", "v0.0.44"] as const) expect(comment(buildSubmitRequest(v, spec(drv as JobSpec["extra"]), setting))).toBe(want);
});

test("no tag, no comment added", () => {
  const { tag: _t, ...untagged } = spec();
  expect(comment(buildSubmitRequest("v0.0.38", untagged))).toBeUndefined();
});

test("taggedJobs picks the unfinished jobs with the tag as a whole word", () => {
  const reply = {
    jobs: [
      { job_id: 1, comment: "nsh:k1", job_state: "PENDING" },
      { job_id: 2, comment: "project X nsh:k1", job_state: ["RUNNING"] },
      { job_id: 3, comment: "nsh:k1", job_state: "CANCELLED" },
      { job_id: 4, comment: "nsh:k10", job_state: "PENDING" },
      { job_id: 5, comment: null, job_state: "PENDING" },
      { job_id: 6, job_state: ["COMPLETED"] },
      { job_id: 7, comment: "nsh:k1", job_state: ["RUNNING", "COMPLETING"] },
    ],
  };
  expect(taggedJobs(reply, "nsh:k1")).toEqual(["1", "2", "7"]);
  expect(taggedJobs({ errors: [] }, "nsh:k1")).toEqual([]);
  expect(taggedJobs("garbage", "nsh:k1")).toEqual([]);
});
