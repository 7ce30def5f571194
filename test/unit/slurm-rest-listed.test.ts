// Expected: one GET /jobs answers for many jobs: each asked-for id gets the status its own entry
// gives (the same as GET /job/{id} would), other users' and unasked jobs are ignored, and a job
// the list no longer holds is "unknown" (ended and forgotten), never another job's status.
import { expect, test } from "bun:test";
import { listedStatuses, parseJobResponse } from "../../src/schedulers/slurm-rest-shapes.ts";

const base = { name: "x", nodes: "vm", state_reason: "None", submit_time: 1795410915, start_time: 1795410916, end_time: 1795410917, exit_code: 0 };
const list = {
  jobs: [
    { ...base, job_id: 5, job_state: "COMPLETED" },
    { ...base, job_id: 6, job_state: "PENDING", state_reason: "Resources", nodes: "", start_time: 0 },
    { ...base, job_id: 7, job_state: "RUNNING" },
  ],
};

test("each id gets its own entry's status, as GET /job/{id} would give it", () => {
  const got = listedStatuses("v0.0.38", list, ["7", "5", "6"]);
  expect([...got.keys()]).toEqual(["7", "5", "6"]);
  for (const j of list.jobs) {
    const one = parseJobResponse("v0.0.38", { jobs: [j] }, String(j.job_id));
    expect(one.ok && got.get(String(j.job_id))).toEqual(one.ok ? one.status : false);
  }
  expect(got.get("6")).toMatchObject({ state: "pending", reason: "Resources" });
});

test("a job no longer listed is unknown, not the first job of the list", () => {
  const got = listedStatuses("v0.0.38", list, ["999"]);
  expect(got.get("999")).toMatchObject({ id: "999", state: "unknown", reason: "slurmctld no longer lists job 999" });
});

test("an empty or malformed reply: all unknown", () => {
  expect(listedStatuses("v0.0.38", {}, ["1"]).get("1")?.state).toBe("unknown");
  expect(listedStatuses("v0.0.38", null, ["1"]).get("1")?.state).toBe("unknown");
});
