// How a job's end is told: a job ended by its time limit (Slurm TIMEOUT, or still COMPLETING with
// reason TimeLimit) is a timed-out build (exit 101) whose message names the Slurm time limit and
// the job id; any other end is a plain failure (exit 1) that keeps what broke on nsh's side.
import { expect, test } from "bun:test";
import { JOB_TIME_MARGIN_MINUTES, TIMED_OUT, formatMinutes, hitTimeLimit, jobEndVerdict, jobTimeLimitMinutes, plainText, remoteFailure } from "../../src/hook/job-end.ts";
import { pastTimeLimit } from "../../src/hook/build/follow.ts";
import type { JobState, JobStatus } from "../../src/schedulers/scheduler.ts";

const st = (state: JobState, rawState: string[], reason: string | null, timeLimitMinutes?: number | null): JobStatus => ({
  id: "7",
  state,
  rawState,
  reason,
  nodes: "vm",
  exitCode: null,
  signal: 15,
  startTime: 1,
  endTime: 2,
  ...(timeLimitMinutes === undefined ? {} : { timeLimitMinutes }),
});

test.each([
  // [label, Nix timeout s, job limit min]
  ["no timeout", 0, undefined],
  ["5 s rounds up to a minute", 5, 1 + JOB_TIME_MARGIN_MINUTES],
  ["60 s is one minute", 60, 1 + JOB_TIME_MARGIN_MINUTES],
  ["61 s is two", 61, 2 + JOB_TIME_MARGIN_MINUTES],
  ["3601 s", 3601, 61 + JOB_TIME_MARGIN_MINUTES],
  ["negative is none", -3, undefined],
])("job time limit: %s", (_l, secs, want) => expect(jobTimeLimitMinutes(secs)).toBe(want));

test.each([
  // CAPTURED (22.05 lab): a job past its limit, after it ended and while its processes are killed
  ["TIMEOUT", st("timeout", ["TIMEOUT"], "TimeLimit", 1), true],
  ["COMPLETING with TimeLimit", st("completing", ["COMPLETING"], "TimeLimit", 1), true],
  // v0.0.40+: state list
  ["[TIMEOUT]", st("timeout", ["TIMEOUT"], null), true],
  ["cancelled", st("cancelled", ["CANCELLED"], null), false],
  ["node fail", st("node_fail", ["NODE_FAIL"], "NodeDown"), false],
  ["completing, no reason", st("completing", ["COMPLETING"], null), false],
])("hit its time limit: %s", (_l, s, want) => expect(hitTimeLimit(s)).toBe(want));

test.each([
  // [label, status, during, cause, exit status, must contain, must not contain]
  ["Slurm TIMEOUT, 1 min", st("timeout", ["TIMEOUT"], "TimeLimit", 1), "while nsh built in it", "unexpected end of stream", TIMED_OUT, ["job 7 reached its Slurm time limit of 1 min", "(TIMEOUT: TimeLimit)", "while nsh built in it", "time_limit in extraSlurmParams"], ["unexpected end of stream"]],
  ["Slurm TIMEOUT, limit unknown", st("timeout", ["TIMEOUT"], null), "before its agent answered", undefined, TIMED_OUT, ["job 7 reached its Slurm time limit and Slurm ended it (TIMEOUT) before its agent answered"], [" of "]],
  ["still completing after the limit", st("completing", ["COMPLETING"], "TimeLimit", 90), "while nsh built in it", "eof", TIMED_OUT, ["Slurm time limit of 1 h 30 min", "(COMPLETING: TimeLimit)"], ["eof"]],
  ["cancelled", st("cancelled", ["CANCELLED"], null), "while nsh built in it", "eof", 1, ["job 7 ended (CANCELLED) while nsh built in it: eof"], ["time limit"]],
  ["ending", st("completing", ["COMPLETING"], null), "while nsh built in it", "eof", 1, ["job 7 is ending (COMPLETING) while nsh built in it: eof"], ["time limit"]],
  ["node failure", st("node_fail", ["NODE_FAIL"], "NodeDown"), "before its agent answered", undefined, 1, ["job 7 ended (NODE_FAIL: NodeDown) before its agent answered"], ["time limit"]],
] as const)("verdict: %s", (_l, s, during, cause, status, has, hasNot) => {
  const v = jobEndVerdict("7", s, during, cause);
  expect(v.status).toBe(status);
  for (const t of has) expect(v.message).toContain(t);
  for (const t of hasNot) expect(v.message).not.toContain(t);
});

test("a PBS job's time limit is told in PBS's words, with PBS's way to raise it", () => {
  const words = { scheduler: "PBS", raise: "set walltime in pbsResources" };
  const v = jobEndVerdict("12.srv", st("timeout", ["F", "substate 93"], "the job exceeded its walltime", 1), "while nsh built in it", "eof", words);
  expect(v.status).toBe(TIMED_OUT);
  expect(v.message).toContain("job 12.srv reached its PBS time limit of 1 min and PBS ended it");
  expect(v.message).toContain("set walltime in pbsResources");
  expect(v.message).not.toContain("Slurm");
});

test.each([
  // [label, start (unix s), limit (min), now (unix s), past its limit]
  // 10 s of slack: the scheduler's clock may be ahead of the hook's
  ["running for less than its limit", 1000, 1, 1049, false],
  ["running within 10 s of its limit", 1000, 1, 1050, true],
  ["running past its limit", 1000, 1, 1090, true],
  ["no start time", null, 1, 5000, false],
  ["no limit", 1000, null, 5000, false],
] as const)("past its time limit: %s", (_l, startTime, limit, now, want) => {
  const s = { ...st("running", ["R"], null, limit), startTime };
  expect(pastTimeLimit(s, now * 1000)).toBe(want);
});

test.each([
  [0, "0 min"],
  [1, "1 min"],
  [60, "1 h"],
  [61, "1 h 1 min"],
  [1500, "1 d 1 h"],
])("%p minutes read %p", (m, s) => expect(formatMinutes(m)).toBe(s));

test("Nix's colours are dropped for the record", () =>
  expect(plainText("\x1b[0m\x1b[35;1mbuilding of 'x!out'\x1b[0m timed out after \x1b[35;1m5\x1b[0m seconds")).toBe("building of 'x!out' timed out after 5 seconds"));

// The node's build result as a local build's failure of the same kind (nix-build 100 / 101 / 1).
test.each([
  ["PermanentFailure", "permanent"],
  ["OutputRejected", "permanent"],
  ["NotDeterministic", "permanent"],
  ["CachedFailure", "permanent"],
  ["TimedOut", "timed-out"],
  ["TransientFailure", "other"],
  ["MiscFailure", "other"],
  ["LogLimitExceeded", "other"],
  ["InputRejected", "other"],
  ["DependencyFailed", "other"],
  ["Unknown(42)", "other"],
] as const)("a node's %p is %p", (name, kind) => expect(remoteFailure(name)).toBe(kind));
