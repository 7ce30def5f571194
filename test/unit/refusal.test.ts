// Expected: a submit refused by Slurm's rate limit, a busy slurmctld or a full queue is retried
// (the refusal is recognised from what each backend reports); any other failure, and an auth or
// config failure whatever its text, is not; an ambiguous accounting-policy refusal is retried only
// while jobs of ours will leave the queue, and nothing is retried past the bound.
import { describe, expect, test } from "bun:test";
import { classifyRefusal, retryRefusal } from "../../src/schedulers/refusal.ts";
import { SchedulerError } from "../../src/schedulers/scheduler.ts";

const rest = (msg: string) => new SchedulerError("rejected", `Slurm refused the job (v0.0.38): ${msg}`, [msg]);

describe("classifyRefusal", () => {
  test.each([
    ["REST, 23.02+ rate limit", rest("Rate limit exceeded, please retry momentarily (error 1804)"), "rate-limit"],
    ["native, rate limit (errno 1804 is 'unreachable' there)", new SchedulerError("unreachable", "slurm-native: submitting: Rate limit exceeded, please retry momentarily (Slurm error 1804)"), "rate-limit"],
    ["a proxy's HTTP 429", new SchedulerError("protocol", "slurmrestd at h:1 sent a non-JSON reply to POST /x (HTTP 429): Too Many Requests"), "rate-limit"],
    ["MaxJobCount reached", rest("Unable to create job record, try again (error 2007)"), "too-many-jobs"],
    ["sbatch naming the submit limit", new SchedulerError("rejected", "sbatch failed", ["sbatch: error: QOSMaxSubmitJobPerUserLimit", "Batch job submission failed: Job violates accounting/QOS policy (job submit limit, user's size and/or time limits)"]), "too-many-jobs"],
    ["accounting policy, limit not named", rest("Job violates accounting/QOS policy (job submit limit, user's size and/or time limits) (error 2050)"), "policy"],
    ["EAGAIN", new SchedulerError("rejected", "sbatch failed", ["sbatch: error: Batch job submission failed: Resource temporarily unavailable"]), "busy"],
    ["sbatch's own busy message", new SchedulerError("rejected", "sbatch: error: Slurm temporarily unable to accept job, sleeping and retrying"), "busy"],
    ["RPC queue hard drop", rest("Unknown error (error 1805)"), "busy"],
    ["invalid partition", rest("Invalid partition name specified (error 2000)"), null],
    ["invalid time limit", rest("Requested time limit is invalid (missing or exceeds some limit) (error 2051)"), null],
    ["auth failure mentioning a rate", new SchedulerError("auth", "authentication failed: Rate limit exceeded"), null],
    ["config error", new SchedulerError("config", "no JWT"), null],
    ["timeout (may have submitted: not ours to retry)", new SchedulerError("timeout", "slurmrestd did not answer POST within 20000 ms"), null],
    ["not a SchedulerError", new Error("Rate limit exceeded"), null],
  ])("%s", (_l, err, want) => expect(classifyRefusal(err)).toBe(want as never));
});

describe("retryRefusal", () => {
  test.each([
    ["rate limit", "rate-limit", 0, 0, true],
    ["too many jobs", "too-many-jobs", 0, 1000, true],
    ["busy", "busy", 5, 0, true],
    ["policy while our jobs are queued or running", "policy", 3, 0, true],
    ["policy with none of ours: a size or time limit, or others' jobs", "policy", 0, 0, false],
    ["past the bound", "rate-limit", 0, 60_000, false],
    ["not a refusal", null, 3, 0, false],
  ] as const)("%s", (_l, r, others, waited, want) => expect(retryRefusal(r, others, waited, 60_000)).toBe(want));
});
