// Expected: slurmrestd's replies are read right on every Slurm release nsh meets, from replies
// captured on 22.05.8 (bookworm), 24.11.5 (trixie) and 26.05.5 (sid):
//   - a ping that says the controller is DOWN / not responding (what 24.11+ answer a refused token
//     with, HTTP 200) is not taken for a working controller;
//   - the authenticated probe tells an accepted token (200 / 304) from a refused one (511, or 22.05's
//     500 "Unspecified error" from slurm_load_jobs) and from other failures;
//   - an unknown job is a job reply on every version (22.05: 500, 24.11+: 404, both error 2017);
//   - a cancel succeeds when the job is gone or done, and fails on a per-job error 24.11+ hide in status[];
//   - a job cancelled before it ran has no exit code (24.11+ say SUCCESS / 0), a killed one its signal.
import { describe, expect, test } from "bun:test";
import { cancelledExit, parseJobResponse } from "../../src/schedulers/slurm-rest-shapes.ts";
import {
  authProbePath,
  authProbeVerdict,
  cancelDone,
  cancelErrors,
  isUnknownJobReply,
  pingVerdict,
} from "../../src/schedulers/slurm-rest-verdicts.ts";

const err = (code: number, error: string, source = "x", description = "") => ({ error_number: code, error, source, description });

describe("ping", () => {
  test.each([
    ["22.05 v0.0.38 up", { pings: [{ hostname: "vm", ping: "UP", status: 0, mode: "primary" }] }, true],
    ["24.11 v0.0.41 up", { pings: [{ hostname: "vm", pinged: "UP", latency: 863, mode: "primary" }] }, true],
    ["24.11 v0.0.41 bad token", { pings: [{ hostname: "vm", pinged: "DOWN", latency: 10804, mode: "primary" }] }, false],
    ["26.05 v0.0.44 up", { pings: [{ hostname: "vm", pinged: "UP", responding: true, latency: 1432, mode: "primary", primary: true }] }, true],
    ["26.05 v0.0.44 bad token", { pings: [{ hostname: "vm", pinged: "DOWN", responding: false, latency: 11812, primary: true }] }, false],
    ["26.05 v0.0.45 up", { pings: [{ hostname: "vm", responding: true, latency: 667, primary: true, status: "No error" }] }, true],
    ["26.05 v0.0.45 bad token", { pings: [{ hostname: "vm", responding: false, primary: true, status: "Protocol authentication error" }] }, false],
    ["backup down, primary up", { pings: [{ responding: false }, { responding: true }] }, true],
    ["no pings list", { errors: [] }, true],
  ])("%s", (_what, json, up) => expect(pingVerdict(json).up).toBe(up));

  test("v0.0.45 says why", () =>
    expect(pingVerdict({ pings: [{ responding: false, status: "Protocol authentication error" }] })).toEqual({ up: false, why: "Protocol authentication error" }));
});

describe("the authenticated probe", () => {
  test("asks for jobs changed in the future", () => expect(authProbePath("v0.0.45", 1000)).toBe("/slurm/v0.0.45/jobs?update_time=4600"));
  test.each([
    ["22.05 accepted (not modified)", 304, undefined, { accepted: true }],
    ["26.05 accepted", 200, { jobs: [], errors: [], warnings: [{ description: "No job changes since update_time" }] }, { accepted: true }],
    ["22.05 refused", 500, { errors: [err(-1, "Unspecified error", "slurm_load_jobs", "Failed while looking for jobs")] }, { accepted: false, tokenRejected: true }],
    ["24.11/26.05 refused", 511, { errors: [err(1007, "Protocol authentication error", "slurm_load_jobs()")] }, { accepted: false, tokenRejected: true }],
    ["slurmctld down", 500, { errors: [err(1001, "Communication connection failure", "slurm_load_jobs()")] }, { accepted: false, tokenRejected: false }],
    ["proxy error", 502, undefined, { accepted: false, tokenRejected: false }],
  ])("%s", (_what, status, json, want) => expect(authProbeVerdict(status, json)).toMatchObject(want));
});

describe("unknown job", () => {
  test.each([
    ["22.05", 500, { errors: [err(2017, "Invalid job id specified", "slurm_load_job")], jobs: [] }, true],
    ["24.11/26.05", 404, { errors: [err(2017, "Invalid job id specified", "_handle_job_get")], jobs: [] }, true],
    ["no such endpoint", 404, undefined, false],
    ["refused token", 511, { errors: [err(1007, "Protocol authentication error")] }, false],
  ])("%s", (_what, status, json, want) => expect(isUnknownJobReply(status, json)).toBe(want));

  test("parses as not found on 26.05", () =>
    expect(parseJobResponse("v0.0.45", { jobs: [], errors: [err(2017, "Invalid job id specified")] }, "9")).toMatchObject({ ok: false, notFound: true }));
});

describe("cancel", () => {
  const status = (code: number, string: string) => ({ status: [{ error: { string, code, message: string }, step_id: "1" }], errors: [] });
  test.each([
    ["22.05 running job", 200, { errors: [] }, true],
    ["22.05 unknown job", 500, { errors: [err(2017, "Invalid job id specified", "slurm_kill_job")] }, true],
    ["22.05 refused token", 500, { errors: [err(5005, "Zero Bytes were transmitted or received", "slurm_kill_job")] }, false],
    ["26.05 running job", 200, { status: [], errors: [] }, true],
    ["26.05 unknown job", 200, status(2017, "Invalid job id specified"), true],
    ["26.05 finished job", 200, status(2021, "Job/step already completing or completed"), true],
    ["26.05 someone else's job", 200, status(2002, "Access/permission denied"), false],
    ["26.05 refused token", 511, { status: [], errors: [err(1007, "Protocol authentication error", "slurm_kill_jobs()")] }, false],
  ])("%s", (_what, code, json, done) => expect(cancelDone(code, cancelErrors(json))).toBe(done));
});

describe("a cancelled job's exit code", () => {
  const verbose = (status: string[], rc: number | null, sig: number | null) => ({
    status,
    return_code: { set: rc !== null, infinite: false, number: rc ?? 0 },
    signal: { id: { set: sig !== null, infinite: false, number: sig ?? 0 }, name: sig ? "TERM" : "" },
  });
  test.each([
    ["26.05 cancelled while pending", "v0.0.45", ["CANCELLED"], verbose(["SUCCESS"], 0, null), { exitCode: null, signal: null }],
    ["26.05 cancelled while running", "v0.0.45", ["CANCELLED"], verbose(["SIGNALED"], null, 15), { exitCode: null, signal: 15 }],
    ["22.05 cancelled while running", "v0.0.38", "CANCELLED", 15, { exitCode: null, signal: 15 }],
    ["26.05 completed", "v0.0.45", ["COMPLETED"], verbose(["SUCCESS"], 0, null), { exitCode: 0, signal: null }],
    ["26.05 failed", "v0.0.45", ["FAILED"], verbose(["ERROR"], 3, null), { exitCode: 3, signal: null }],
  ] as const)("%s", (_what, v, state, exit, want) => {
    const r = parseJobResponse(v, { jobs: [{ job_id: 1, job_state: state, exit_code: exit }] }, "1");
    expect(r.ok && { exitCode: r.status.exitCode, signal: r.status.signal }).toEqual(want);
  });
  test("only a cancelled job loses its 0", () => expect(cancelledExit({ state: "completed", exitCode: 0, signal: null }).exitCode).toBe(0));
});
