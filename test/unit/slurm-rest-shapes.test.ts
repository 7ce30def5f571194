// Table tests of the Slurm REST shapes, v0.0.38 … v0.0.45.
//
// Example documents are marked:
//   CAPTURED  replies of a real Slurm 22.05.8 slurmrestd (v0.0.38, the test lab), trimmed to the
//             fields read here;
//   DOCUMENTED written from that version's OpenAPI description (v0.0.39: rest_api.shtml of 23.02
//             and its data_parser; v0.0.40: rest_api.shtml of 23.11; v0.0.41-44: the OpenAPI specs
//             in SchedMD/slurm's testsuite), not captured from a server.
import { describe, expect, test } from "bun:test";
import type { JobSpec, JsonObject } from "../../src/schedulers/scheduler.ts";
import { isTerminal, mergeParams } from "../../src/schedulers/scheduler.ts";
import {
  type ApiVersion,
  buildSubmitRequest,
  chooseVersion,
  decodeWaitStatus,
  jwtProblem,
  looksLikeRejectedToken,
  normaliseState,
  parseErrors,
  parseJobResponse,
  parseSubmitResponse,
  servedVersions,
  SUPPORTED_VERSIONS,
} from "../../src/schedulers/slurm-rest-shapes.ts";

const nv = (number: number, set = true) => ({ set, infinite: false, number });

const spec: JobSpec = {
  name: "nsh-hello",
  script: "#!/bin/sh\necho hi\n",
  workingDirectory: "/home/u/nsh",
  environment: { PATH: "/bin", FOO: "bar" },
  stdout: "/home/u/nsh/%j.out",
  stderr: "/home/u/nsh/%j.err",
  timeLimitMinutes: 5,
  extra: { cpus_per_task: 2, memory_per_node: { set: true, number: 1024 }, environment: ["FOO=drv", "DRV=1"] },
};
const setting = { comment: "from the setting", cpus_per_task: 4, environment: { SET: "1" } };
const env = { PATH: "/bin", FOO: "drv", DRV: "1", SET: "1" };
const envList = ["PATH=/bin", "FOO=drv", "DRV=1", "SET=1"];
const common = { name: "nsh-hello", current_working_directory: "/home/u/nsh", standard_output: "/home/u/nsh/%j.out", standard_error: "/home/u/nsh/%j.err", comment: "from the setting", cpus_per_task: 4 };

describe("buildSubmitRequest: defaults < extraSlurmParams < slurm-extra-submission-params", () => {
  const cases: [ApiVersion, unknown][] = [
    // CAPTURED shape (accepted by 22.05): script top level, environment an object, plain integers
    ["v0.0.38", { script: spec.script, job: { ...common, time_limit: 5, memory_per_node: 1024, environment: env } }],
    // DOCUMENTED: environment a list, no-val structs for time/memory, script still top level
    ["v0.0.39", { script: spec.script, job: { ...common, time_limit: nv(5), memory_per_node: { set: true, number: 1024 }, environment: envList } }],
    ["v0.0.40", { script: spec.script, job: { ...common, time_limit: nv(5), memory_per_node: { set: true, number: 1024 }, environment: envList } }],
    // DOCUMENTED: top-level script deprecated from v0.0.41, job.script instead
    ...(["v0.0.41", "v0.0.42", "v0.0.43", "v0.0.44"] as const).map(
      (v): [ApiVersion, unknown] => [v, { job: { ...common, time_limit: nv(5), memory_per_node: { set: true, number: 1024 }, environment: envList, script: spec.script } }],
    ),
  ];
  test.each(cases)("%s", (v, want) => expect(buildSubmitRequest(v, spec, setting)).toEqual(want as never));

  test("numbers adapt to the version both ways; null deletes; empty environment gets PATH", () => {
    const s: JobSpec = { name: "n", script: "s", workingDirectory: "/", environment: {}, extra: { priority: 7, time_minimum: { infinite: true }, begin_time: { set: false } } };
    expect(buildSubmitRequest("v0.0.38", s, { name: null })).toEqual({
      script: "s",
      job: { current_working_directory: "/", priority: 7, time_minimum: "UNLIMITED", environment: { PATH: "/usr/local/bin:/usr/bin:/bin" } },
    });
    expect(buildSubmitRequest("v0.0.39", s).job).toMatchObject({ priority: 7, time_minimum: { infinite: true } }); // priority: no-val only from v0.0.40
    expect(buildSubmitRequest("v0.0.40", s).job).toMatchObject({ priority: nv(7), begin_time: { set: false } });
    expect(buildSubmitRequest("v0.0.44", { ...s, extra: { environment: null } }, { environment: ["A=1"] }).job).toMatchObject({ environment: ["A=1"] });
  });
});

describe("mergeParams", () => {
  test.each([
    [[{ a: 1 }, { a: 2 }], { a: 2 }],
    [[{ a: { x: 1, y: 2 } }, { a: { y: 3 } }], { a: { x: 1, y: 3 } }],
    [[{ a: [1, 2] }, { a: [3] }], { a: [3] }],
    [[{ a: 1, b: 2 }, { b: null }], { a: 1 }],
    [[{ a: { x: 1 } }, undefined, { a: 5 }], { a: 5 }],
    [[{ a: 5 }, { a: { x: null, y: 1 } }], { a: { y: 1 } }],
  ] as [(JsonObject | undefined)[], JsonObject][])("%j → %j", (layers, want) => expect(mergeParams(...layers)).toEqual(want));
});

describe("parseSubmitResponse", () => {
  const meta38 = { plugin: { type: "openapi/v0.0.38", name: "Slurm OpenAPI v0.0.38" }, Slurm: { version: { major: 22, micro: 8, minor: 5 }, release: "22.05.8" } };
  test.each([
    // CAPTURED
    ["v0.0.38", { meta: meta38, errors: [], job_id: 3, step_id: "BATCH", job_submit_user_msg: "" }, "3"],
    // DOCUMENTED: v0.0.39 job_submission_response
    ["v0.0.39", { meta: {}, errors: [], warnings: [], job_id: 12, step_id: "batch", job_submit_user_msg: "" }, "12"],
    // DOCUMENTED: v0.0.40/41 also carry result {job_id, step_id, error_code, error, job_submit_user_msg}
    ["v0.0.40", { result: { job_id: 40, step_id: "batch", error_code: 0 }, job_id: 40, step_id: "batch", errors: [], warnings: [] }, "40"],
    ["v0.0.41", { result: { job_id: 41, error_code: 0 }, errors: [], warnings: [] }, "41"],
    ["v0.0.42", { job_id: 42, step_id: "batch", job_submit_user_msg: "", meta: {}, errors: [], warnings: [] }, "42"],
    ["v0.0.43", { job_id: 43, errors: [], warnings: [] }, "43"],
    ["v0.0.44", { job_id: 44, errors: [], warnings: [{ description: "Ignoring unknown field", source: "#/job/gres/" }] }, "44"],
  ] as const)("%s ok", (v, json, id) => expect(parseSubmitResponse(v, json)).toMatchObject({ ok: true, jobId: id }));

  test("errors: 22.05's error_code shape (CAPTURED) and the documented error_number shape", () => {
    const bad = parseSubmitResponse("v0.0.38", { meta: meta38, errors: [{ error_code: 2000, error: "Invalid partition name specified" }], job_id: null });
    expect(bad).toMatchObject({ ok: false, message: "Slurm refused the job (v0.0.38): Invalid partition name specified (error 2000)" });
    const env = parseSubmitResponse("v0.0.38", { errors: [{ error: "environment must be set", error_code: 2127 }, { error_code: 9001, error: "Failure during parsing" }] });
    expect(env.ok ? "" : env.message).toContain("environment must be set (error 2127); Failure during parsing (error 9001)");
    const doc = parseSubmitResponse("v0.0.44", { errors: [{ description: "Unable to parse job", error_number: 9001, error: "Failure during parsing", source: "_parse_job" }] });
    expect(doc.ok ? "" : doc.message).toContain("Failure during parsing: Unable to parse job (error 9001) [_parse_job]");
    expect(parseSubmitResponse("v0.0.42", {}).ok).toBe(false);
    expect(parseSubmitResponse("v0.0.42", "<html>").ok).toBe(false);
  });
});

describe("parseJobResponse", () => {
  const job38 = { job_id: 5, name: "x", nodes: "vm", state_reason: "None", submit_time: 1795410915, start_time: 1795410916, end_time: 1795410917 };
  const t = (n: number) => nv(n);
  const verbose = (status: string[], rc: number | null, sig: number | null) => ({
    status,
    return_code: rc === null ? nv(0, false) : nv(rc),
    signal: { id: sig === null ? nv(0, false) : nv(sig), name: sig === 15 ? "TERM" : "" },
  });
  const cases: [string, ApiVersion, unknown, Record<string, unknown>][] = [
    // CAPTURED (22.05): exit_code is the raw wait status, job_state one string
    ["38 completed", "v0.0.38", { jobs: [{ ...job38, job_state: "COMPLETED", exit_code: 0 }] }, { state: "completed", exitCode: 0, signal: null, nodes: "vm", reason: null, startTime: 1795410916, endTime: 1795410917 }],
    ["38 exit 3", "v0.0.38", { jobs: [{ ...job38, job_state: "FAILED", state_reason: "NonZeroExitCode", exit_code: 768 }] }, { state: "failed", exitCode: 3, reason: "NonZeroExitCode" }],
    ["38 scancel", "v0.0.38", { jobs: [{ ...job38, job_state: "CANCELLED", exit_code: 15 }] }, { state: "cancelled", exitCode: null, signal: 15 }],
    ["38 pending", "v0.0.38", { jobs: [{ ...job38, job_state: "PENDING", state_reason: "JobHeldUser", nodes: "", exit_code: 0, start_time: 0, end_time: 1795414516 }] }, { state: "pending", reason: "JobHeldUser", nodes: null, exitCode: null, startTime: null, endTime: null }],
    ["38 completing", "v0.0.38", { jobs: [{ ...job38, job_state: "COMPLETING", exit_code: 0 }] }, { state: "completing", exitCode: 0 }],
    // CAPTURED (22.05 lab): a job past its 1-minute limit; a job without one (partition MaxTime=INFINITE) says null
    ["38 time limit", "v0.0.38", { jobs: [{ ...job38, job_state: "TIMEOUT", state_reason: "TimeLimit", exit_code: 36608, time_limit: 1 }] }, { state: "timeout", reason: "TimeLimit", timeLimitMinutes: 1 }],
    ["38 no time limit", "v0.0.38", { jobs: [{ ...job38, job_state: "RUNNING", exit_code: 0, time_limit: null }] }, { state: "running", timeLimitMinutes: null }],
    // Slurm's INFINITE (0xffffffff) as a plain number, should a version pass it through
    ["38 INFINITE", "v0.0.38", { jobs: [{ ...job38, job_state: "RUNNING", exit_code: 0, time_limit: 4294967295 }] }, { state: "running", timeLimitMinutes: null }],
    ["40 time limit", "v0.0.40", { jobs: [{ job_id: 7, job_state: ["TIMEOUT"], state_reason: "TimeLimit", time_limit: nv(90) }] }, { state: "timeout", timeLimitMinutes: 90 }],
    ["40 infinite time limit", "v0.0.40", { jobs: [{ job_id: 7, job_state: ["RUNNING"], time_limit: { set: true, infinite: true, number: 0 } }] }, { timeLimitMinutes: null }],
    ["38 running: estimated end is no end", "v0.0.38", { jobs: [{ ...job38, job_state: "RUNNING", exit_code: 0 }] }, { state: "running", exitCode: null, endTime: null, startTime: 1795410916 }],
    // DOCUMENTED v0.0.39: string state, plain times, raw exit status as a no-val struct (23.02.4+)
    ["39 exit 3", "v0.0.39", { jobs: [{ job_id: 7, job_state: "FAILED", exit_code: t(768), start_time: 100, end_time: 200, nodes: "n1" }] }, { state: "failed", exitCode: 3, startTime: 100, endTime: 200 }],
    ["39 running", "v0.0.39", { jobs: [{ job_id: 7, job_state: "RUNNING", exit_code: nv(0, false), start_time: 100, end_time: 400 }] }, { state: "running", exitCode: null, endTime: null }],
    // DOCUMENTED v0.0.40+: state list, verbose exit code, times as no-val structs
    ["40 completed", "v0.0.40", { jobs: [{ job_id: 7, job_state: ["COMPLETED"], exit_code: verbose(["SUCCESS"], 0, null), start_time: t(100), end_time: t(200), nodes: "n[1-2]" }] }, { state: "completed", exitCode: 0, nodes: "n[1-2]", endTime: 200 }],
    ["41 failed", "v0.0.41", { jobs: [{ job_id: 7, job_state: ["FAILED"], state_reason: "NonZeroExitCode", exit_code: verbose(["ERROR"], 3, null), start_time: t(100), end_time: t(200) }] }, { state: "failed", exitCode: 3 }],
    ["42 cancelled", "v0.0.42", { jobs: [{ job_id: 7, job_state: ["CANCELLED"], exit_code: verbose(["SIGNALED"], null, 15), start_time: t(100), end_time: t(200) }] }, { state: "cancelled", exitCode: null, signal: 15 }],
    ["43 requeued pending", "v0.0.43", { jobs: [{ job_id: 7, job_state: ["PENDING", "REQUEUED"], state_reason: "Priority", exit_code: verbose(["PENDING"], null, null), start_time: t(999), end_time: t(0) }] }, { state: "pending", reason: "Priority", startTime: null }],
    ["44 oom", "v0.0.44", { jobs: [{ job_id: 7, job_state: ["OUT_OF_MEMORY"], exit_code: verbose(["SIGNALED"], null, 9), start_time: t(100), end_time: t(150) }] }, { state: "out_of_memory", signal: 9 }],
    ["44 completing", "v0.0.44", { jobs: [{ job_id: 7, job_state: ["COMPLETED", "COMPLETING"], exit_code: verbose(["SUCCESS"], 0, null) }] }, { state: "completing", rawState: ["COMPLETED", "COMPLETING"] }],
  ];
  test.each(cases)("%s", (_label, v, json, want) => {
    const r = parseJobResponse(v, json, undefined);
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.status).toMatchObject(want);
  });

  test("unknown job: 22.05's 2017 (CAPTURED) means not found; other errors do not", () => {
    const gone = parseJobResponse("v0.0.38", { errors: [{ description: "Unable to find JobId=999999", error_number: 2017, error: "Invalid job id specified", source: "slurm_load_job" }], jobs: [] }, "999999");
    expect(gone).toMatchObject({ ok: false, notFound: true });
    expect(gone.ok ? "" : gone.message).toBe("job 999999 (v0.0.38): Invalid job id specified: Unable to find JobId=999999 (error 2017) [slurm_load_job]");
    expect(parseJobResponse("v0.0.38", { errors: [{ description: "Unable to find JobId=1", error_number: -1, error: "Unspecified error", source: "slurm_load_job" }], jobs: [] }, "1")).toMatchObject({ ok: false, notFound: false });
    expect(parseJobResponse("v0.0.44", { jobs: [{ job_id: 8, job_state: ["RUNNING"] }, { job_id: 9, job_state: ["PENDING"] }] }, "9")).toMatchObject({ ok: true, status: { id: "9", state: "pending" } });
  });
});

describe("states and exit codes", () => {
  test.each([
    [["PENDING"], "pending"],
    [["RUNNING"], "running"],
    [["CONFIGURING"], "running"],
    [["SUSPENDED"], "running"],
    [["COMPLETING"], "completing"],
    [["COMPLETED"], "completed"],
    [["FAILED", "LAUNCH_FAILED"], "failed"],
    [["LAUNCH_FAILED"], "failed"],
    [["CANCELLED"], "cancelled"],
    [["TIMEOUT"], "timeout"],
    [["DEADLINE"], "timeout"],
    [["NODE_FAIL"], "node_fail"],
    [["BOOT_FAIL"], "node_fail"],
    [["OUT_OF_MEMORY"], "out_of_memory"],
    [["REQUEUE_HOLD"], "pending"],
    [["PREEMPTED"], "failed"],
    [["running"], "running"],
    [["SOMETHING_NEW"], "unknown"],
    [[], "unknown"],
  ] as const)("%j → %s", (words, want) => expect(normaliseState([...words])).toBe(want));

  test.each([
    [0, 0, null],
    [768, 3, null],
    [256 * 255, 255, null],
    [15, null, 15],
    [9, null, 9],
    [0x80 | 11, null, 11], // core dumped
  ])("wait status %i → exit %p signal %p", (raw, exitCode, signal) => expect(decodeWaitStatus(raw)).toEqual({ exitCode, signal }));

  test("terminal states", () => {
    expect(["completed", "failed", "cancelled", "timeout", "node_fail", "out_of_memory", "unknown"].every((s) => isTerminal(s as never))).toBe(true);
    expect(["pending", "running", "completing"].some((s) => isTerminal(s as never))).toBe(false);
  });
});

describe("chooseVersion and servedVersions", () => {
  const s = (...n: number[]) => n.map((x) => `v0.0.${x}`);
  test.each([
    [s(36, 37, 38), "auto", "v0.0.38"],
    [s(38, 39, 40), "auto", "v0.0.40"],
    [s(40, 41, 42), "auto", "v0.0.42"],
    [s(43, 44, 45), "auto", "v0.0.45"],
    [s(44, 45, 46), "auto", "v0.0.45"],
    [s(40, 41, 42), "v0.0.40", "v0.0.40"],
    [s(40, 41, 42), "0.0.41", "v0.0.41"],
    [[], "v0.0.43", "v0.0.43"], // served unknown: trust the setting, the ping will tell
  ])("%j want %s → %s", (served, wanted, want) => expect(chooseVersion(served, wanted)).toEqual({ ok: true, version: want as ApiVersion }));

  test.each([
    [s(36, 37), "auto", "no Slurm REST API version in common: slurmrestd serves v0.0.36, v0.0.37; nsh supports v0.0.38, v0.0.39, v0.0.40, v0.0.41, v0.0.42, v0.0.43, v0.0.44, v0.0.45"],
    [s(46, 47), "auto", "slurmrestd serves v0.0.46, v0.0.47;"],
    [[], "auto", "slurmrestd serves none of the /slurm/ versions"],
    [s(38), "v0.0.99", "slurm-api-version 'v0.0.99' is not a version nsh knows (nsh supports v0.0.38"],
    [s(38), "latest", "'latest' is not a version nsh knows"],
    [s(36, 37, 38), "v0.0.44", "slurm-api-version v0.0.44 is not served (slurmrestd serves v0.0.36, v0.0.37, v0.0.38; nsh supports"],
  ])("%j want %s → error", (served, wanted, msg) => {
    const r = chooseVersion(served, wanted);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toContain(msg);
  });

  test("supported list is a parameter", () => expect(chooseVersion(s(38, 39, 40), "auto", ["v0.0.38", "v0.0.39"])).toEqual({ ok: true, version: "v0.0.39" }));
  test("all eight versions", () => expect(SUPPORTED_VERSIONS.length).toBe(8));

  test("paths: 22.05 without trailing slash (CAPTURED), later specs with (DOCUMENTED)", () => {
    const doc = { paths: { "/openapi/v3": {}, "/slurm/v0.0.38/ping": {}, "/slurm/v0.0.36/job/{job_id}": {}, "/slurm/v0.0.37/diag": {}, "/slurmdb/v0.0.38/jobs": {} } };
    expect(servedVersions(doc)).toEqual(s(36, 37, 38));
    expect(servedVersions({ paths: { "/slurm/v0.0.44/ping/": {}, "/slurm/v0.0.42/jobs/": {}, "/slurmdb/v0.0.44/ping/": {}, "/slurm/v0.0.100/x": {} } })).toEqual(s(42, 44, 100));
    expect(servedVersions("Unable to parse")).toEqual([]);
  });
});

describe("errors and tokens", () => {
  test("parseErrors reads both shapes", () => {
    expect(parseErrors({ errors: [{ description: 'Unknown key "bogus_field"', source: "hsearch_r" }, { error_code: 9001, error: "Failure during parsing" }] })).toEqual([
      { message: 'Unknown key "bogus_field"', code: null, source: "hsearch_r" },
      { message: "Failure during parsing", code: 9001, source: null },
    ]);
    expect(parseErrors(undefined)).toEqual([]);
  });

  // CAPTURED on 22.05 with garbage, forged and expired tokens (HTTP 500 each)
  test.each([
    [{ description: "slurmctld config is unable to load", error_number: -1, error: "Unspecified error", source: "slurm_load_ctl_conf" }, true],
    [{ error_code: 5005, error: "Zero Bytes were transmitted or received" }, true],
    [{ description: "Unable to find JobId=999999", error_number: 2017, error: "Invalid job id specified", source: "slurm_load_job" }, false],
    [{ error_code: 2000, error: "Invalid partition name specified" }, false],
  ])("looksLikeRejectedToken %j → %p", (e, want) => expect(looksLikeRejectedToken(parseErrors({ errors: [e] }))).toBe(want));

  test("jwtProblem", () => {
    const jwt = (payload: object) => `e30.${Buffer.from(JSON.stringify(payload)).toString("base64url")}.sig`;
    expect(jwtProblem(jwt({ exp: 2000, iat: 1000, sun: "u" }), 1500)).toBeNull();
    expect(jwtProblem(jwt({ exp: 1000, sun: "u" }), 1500)).toBe("it expired at 1970-01-01T00:16:40.000Z");
    expect(jwtProblem("not-a-token", 0)).toContain("not a JWT");
    expect(jwtProblem("a.b.c", 0)).toContain("not a JWT");
  });
});
