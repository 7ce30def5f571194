// Which scheduler refusals mean "not now" rather than "never": a submit refused for them waits and
// tries again instead of failing its build. Pure; the words are Slurm's own (slurm_strerror texts
// and error numbers, as slurmrestd, libslurm and sbatch report them), checked against 22.05's
// libslurm and 23.02+'s rate limiting (SlurmctldParameters=rl_enable).
import { SchedulerError } from "./scheduler.ts";

/**
 * - rate-limit: slurmctld's RPC rate limit (SLURMCTLD_COMMUNICATIONS_BACKOFF, 1804, "Rate limit
 *   exceeded, please retry momentarily"; slurmrestd maps it to HTTP 502) or an HTTP 429 from a proxy
 * - busy: slurmctld could not take the job now (EAGAIN, its RPC queue overflowing: 1805)
 * - too-many-jobs: the cluster's MaxJobCount is reached (ESLURM_ERROR_ON_DESC_TO_RECORD_COPY, 2007,
 *   "Unable to create job record, try again") or a MaxSubmitJobs limit is named
 * - policy: ESLURM_ACCOUNTING_POLICY (2050) without saying which limit: a submit limit (passes
 *   when jobs leave the queue) or a size or time limit (never passes); the caller decides
 */
export type Refusal = "rate-limit" | "busy" | "too-many-jobs" | "policy";

const RULES: [Refusal, RegExp][] = [
  ["rate-limit", /rate limit exceeded|SLURMCTLD_COMMUNICATIONS_BACKOFF|\berror 1804\b|\bHTTP 429\b|too many requests/i],
  ["busy", /SLURMCTLD_COMMUNICATIONS_HARD_DROP|\berror 1805\b|resource temporarily unavailable|temporarily unable to accept job/i],
  ["too-many-jobs", /unable to create job record|\berror 2007\b|MaxSubmitJob|MaxSubmitJobsPer|SubmitJobLimit|MaxJobCount/i],
  ["policy", /violates accounting\/QOS policy|ESLURM_ACCOUNTING_POLICY|\berror 2050\b/i],
];

/** Pure: the refusal this error is, or null for any other failure (which fails the build as before). */
export function classifyRefusal(err: unknown): Refusal | null {
  if (!(err instanceof SchedulerError)) return null;
  // A token or configuration problem does not pass by waiting, whatever its text says.
  if (err.kind === "auth" || err.kind === "config" || err.kind === "version" || err.kind === "tls") return null;
  const text = [err.message, ...err.details].join("\n");
  for (const [kind, re] of RULES) if (re.test(text)) return kind;
  return null;
}

/**
 * Pure: does a submit refused so go again? `othersInQueue`: this machine's nsh jobs of the same
 * endpoint that are still queued or running; an ambiguous policy refusal is a submit limit only
 * if jobs of ours will leave the queue, otherwise waiting would never end.
 */
export function retryRefusal(r: Refusal | null, othersInQueue: number, waitedMs: number, maxWaitMs: number): boolean {
  if (r === null || waitedMs >= maxWaitMs) return false;
  return r !== "policy" || othersInQueue > 0;
}
