// Pure: what the user (and nsh's job record) is told when a job ended under its build, and which
// exit status Nix gets for it. Two clocks bound a build:
//   - Nix's `timeout` / `max-silent-time`: enforced by the node's `nix-store --serve`, which gets
//     them with BuildDerivation and answers TimedOut with Nix's own message;
//   - the job's time limit: enforced by the scheduler, which ends the whole job (state TIMEOUT),
//     so the hook only sees its channels break and must ask the scheduler why.
// Both are a timed-out build to Nix: exit 101 (TimedOut on Nix ≤ 2.28 and Lix), never a stack trace;
// the status per Nix version is hookFailureStatus's (src/nix/version.ts).
import type { HookFailure } from "../nix/version.ts";
import type { JobStatus, TimeLimitWords } from "../schedulers/scheduler.ts";

/** The hook's exit status for a timed-out build on Nix ≤ 2.28 and Lix (nix-protocols.md §1.5; see hookFailureStatus). */
export const TIMED_OUT = 101;

/**
 * What the node's BuildResult status (serve protocol) is as a local build's failure: a builder
 * that failed or produced wrong outputs is a permanent failure (nix-build exits 100), one that ran
 * out of time (`timeout`, `max-silent-time`) is timed out (101); the rest (log limit, a transient
 * or misc failure on the node) are no verdict on the derivation (1), as for a local build.
 */
export function remoteFailure(statusName: string): HookFailure {
  if (statusName === "TimedOut") return "timed-out";
  if (["PermanentFailure", "OutputRejected", "NotDeterministic", "CachedFailure"].includes(statusName)) return "permanent";
  return "other";
}

/**
 * nsh's line for a build that failed on the node. A timed-out build names the limit it ran into
 * (Nix's `timeout` or `max-silent-time`, in seconds): from Nix 2.29 on Nix itself only says "builder
 * failed with exit code 1" for it (the hook's status is no longer decoded), so this line is where
 * the user learns why. `exitShown` is the status Nix gets (hookFailureStatus).
 */
export function failedBuildMessage(
  drvPath: string,
  statusName: string,
  errorMsg: string,
  limits: { buildTimeout: number; maxSilentTime: number },
  exitShown: number,
): string {
  if (remoteFailure(statusName) !== "timed-out") return `build of ${drvPath} failed: ${statusName}: ${errorMsg}`;
  // 2.8 says "… of silence" for max-silent-time; 2.34 says only "timed out after N seconds": match N.
  const after = Number(/after (\d+) seconds?/.exec(errorMsg)?.[1] ?? Number.NaN);
  const { buildTimeout: total, maxSilentTime: quiet } = limits;
  const silent = /of silence/.test(errorMsg) || (quiet > 0 && (after === quiet || total === 0) && after !== total);
  const both = !/of silence/.test(errorMsg) && quiet > 0 && after === quiet && after === total;
  const secs = silent ? quiet : total;
  const name = both ? "timeout or max-silent-time" : silent ? "max-silent-time" : "timeout";
  const limit = `Nix's ${name}${secs > 0 ? ` of ${secs} s` : ""}`;
  const shown = exitShown === TIMED_OUT ? "" : ` (Nix reports it as "builder failed with exit code ${exitShown}")`;
  // Nix's own words stay last on the line, as in the line for any other failure.
  return `build of ${drvPath} timed out: it ran into ${limit}${silent ? " without output" : ""}${shown}: ${errorMsg}`;
}

/** Minutes the job gets beyond Nix's `timeout`: the agent's start, the inputs, the outputs. */
export const JOB_TIME_MARGIN_MINUTES = 5;

/**
 * Nix's `timeout` (seconds, 0 = none) → the job's time limit in whole minutes (Slurm's unit),
 * undefined when Nix sets none (the cluster's default applies). Rounded up and padded so that
 * Nix's timeout, said in Nix's words, fires first; the scheduler's limit is the backstop.
 */
export function jobTimeLimitMinutes(buildTimeoutSec: number): number | undefined {
  if (!(buildTimeoutSec > 0)) return undefined;
  return Math.ceil(buildTimeoutSec / 60) + JOB_TIME_MARGIN_MINUTES;
}

/** Slurm's reason for a job ended by its time limit (FAIL_TIMEOUT); shown while it is still COMPLETING. */
const TIME_LIMIT_REASONS = new Set(["TimeLimit"]);

/** The job was ended by its time limit (also while the scheduler still cleans it up). */
export const hitTimeLimit = (st: JobStatus): boolean => st.state === "timeout" || (st.reason !== null && TIME_LIMIT_REASONS.has(st.reason));

export const describeEnd = (st: JobStatus): string => `${st.rawState.join(",") || st.state}${st.reason && st.reason !== "None" ? `: ${st.reason}` : ""}`;

/** "1 min", "1 h 30 min", "2 d 0 h" */
export function formatMinutes(m: number): string {
  if (m < 60) return `${m} min`;
  if (m < 24 * 60) return `${Math.floor(m / 60)} h${m % 60 ? ` ${m % 60} min` : ""}`;
  return `${Math.floor(m / 1440)} d ${Math.floor((m % 1440) / 60)} h`;
}

const SLURM_WORDS: TimeLimitWords = {
  scheduler: "Slurm",
  raise: "set time_limit in extraSlurmParams or slurm-extra-submission-params",
};

export interface JobEndVerdict {
  message: string;
  /** the hook's exit status */
  status: number;
}

/**
 * The job `id` ended (`st`) while nsh was at `during` ("while nsh built in it", "before its agent
 * answered"); `cause` is what broke on the hook's side (a closed channel), worth saying only when
 * the scheduler does not explain it.
 */
export function jobEndVerdict(
  id: string, st: JobStatus, during: string, cause?: string, words = SLURM_WORDS,
): JobEndVerdict {
  if (hitTimeLimit(st)) {
    const limit = st.timeLimitMinutes ? ` of ${formatMinutes(st.timeLimitMinutes)}` : "";
    const who = words.scheduler;
    return {
      status: TIMED_OUT,
      message:
        `job ${id} reached its ${who} time limit${limit} and ${who} ended it (${describeEnd(st)}) ${during}; ` +
        "the build did not finish. " +
        `For more time raise Nix's timeout (the job gets it plus ${JOB_TIME_MARGIN_MINUTES} min) or ${words.raise}`,
    };
  }
  const ending = st.state === "completing" ? "is ending" : "ended";
  return { status: 1, message: `job ${id} ${ending} (${describeEnd(st)}) ${during}${cause ? `: ${cause}` : ""}` };
}

/** Nix's messages carry ANSI colours (for a terminal); nsh's job record keeps plain text. */
export const plainText = (s: string): string => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "");
