// The interface every job scheduler implements (slurm REST now; slurm-native and pbs are one module
// each later). A build becomes one job: submit a shell script, poll its status, cancel it when the
// build is abandoned. Pure: types, the normalised states, and the JSON merge of extra parameters.

/** Normalised job states; each scheduler maps its own words onto these. */
export type JobState =
  | "pending"
  | "running"
  | "completing"
  | "completed"
  | "failed"
  | "cancelled"
  | "timeout"
  | "node_fail"
  | "out_of_memory"
  | "unknown";

/** States a job never leaves; "unknown" is one because a job the scheduler forgot will not come back. */
export const TERMINAL_STATES: ReadonlySet<JobState> = new Set<JobState>([
  "completed",
  "failed",
  "cancelled",
  "timeout",
  "node_fail",
  "out_of_memory",
  "unknown",
]);

export const isTerminal = (state: JobState): boolean => TERMINAL_STATES.has(state);

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export interface JobSpec {
  name: string;
  /** the batch script's text (with its #! line) */
  script: string;
  workingDirectory: string;
  /** the job's whole environment: schedulers do not add the submitter's */
  environment: Record<string, string>;
  stdout?: string;
  stderr?: string;
  timeLimitMinutes?: number;
  /**
   * A mark only this submission carries (Slurm: in the job's comment), so a reaper whose hook was
   * killed while the submit request was in flight, before it learnt the job's id, can find the job.
   */
  tag?: string;
  /**
   * Scheduler-specific parameters from the derivation (extraSlurmParams, pbsResources), already
   * one merged JSON object; the scheduler's own setting (slurm-extra-submission-params) is merged
   * over it, so the setting wins.
   */
  extra?: JsonObject;
}

export interface JobHandle {
  /** the scheduler's job id as text (PBS ids are not numbers) */
  id: string;
}

export interface JobStatus {
  id: string;
  state: JobState;
  /** the scheduler's own state words, e.g. ["RUNNING", "COMPLETING"], for messages */
  rawState: string[];
  /** why the job is pending or failed (Slurm's state_reason), null when there is none */
  reason: string | null;
  /** allocated nodes (a Slurm hostlist such as "node[1-3]"), null before allocation */
  nodes: string | null;
  /** exit status of the batch script, null while it runs or when a signal ended it */
  exitCode: number | null;
  /** the signal that ended the script, null otherwise */
  signal: number | null;
  /** unix seconds; null while only an estimate exists (pending: expected start, running: expected end) */
  startTime: number | null;
  endTime: number | null;
  /** the job's time limit in minutes; null when unlimited, absent when the scheduler does not say */
  timeLimitMinutes?: number | null;
}

export interface Scheduler {
  readonly kind: "slurm" | "slurm-native" | "slurm-cli" | "pbs" | "pbs-cli";
  submit(job: JobSpec): Promise<JobHandle>;
  status(id: string): Promise<JobStatus>;
  /** Ends the job; a job that already finished is not an error. */
  cancel(id: string): Promise<void>;
  /** Ids of the unfinished jobs submitted with `tag` (see JobSpec.tag). */
  findTagged?(tag: string): Promise<string[]>;
  /** The bound of each request: a submit sent may still create its job until this long after. */
  readonly requestTimeoutMs?: number;
  /** one line for logs: where the scheduler is and what it speaks (never credentials) */
  describe(): string;
  // Optional until every backend has them (the coming registry makes them required).
  /** Checks that the scheduler answers (tools exist, server reachable); a clear error otherwise. */
  prepare?(): Promise<void>;
  /** Statuses of many jobs in as few scheduler calls as the backend can (CLI: one squeue, one sacct). */
  statusMany?(ids: string[]): Promise<Map<string, JobStatus>>;
  /** Ends many jobs in one call; jobs already finished are not an error. */
  cancelMany?(ids: string[]): Promise<void>;
  /** Checks for `nsh doctor`: what was checked, whether it holds, and the detail to act on. */
  doctor?(): Promise<DoctorCheck[]>;
}

export interface DoctorCheck {
  ok: boolean;
  what: string;
  detail: string;
}

export type SchedulerErrorKind = "config" | "unreachable" | "tls" | "timeout" | "auth" | "rejected" | "protocol" | "version";

/** Errors a caller can act on by kind; `details` holds the scheduler's own messages. */
export class SchedulerError extends Error {
  override readonly name = "SchedulerError";
  constructor(
    readonly kind: SchedulerErrorKind,
    message: string,
    readonly details: string[] = [],
  ) {
    super(message);
  }
}

/** A submit that failed this way may still have created its job (the request was sent, no answer came). */
export const mayHaveSubmitted = (err: unknown): boolean =>
  !(err instanceof SchedulerError) || err.kind === "timeout" || err.kind === "unreachable";

const isObject = (v: JsonValue | undefined): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Deep merge, later layers win: objects merge key by key, anything else (arrays included) replaces,
 * and null deletes the key (as in a JSON merge patch), so a setting can drop a default.
 */
export function mergeParams(...layers: (JsonObject | undefined)[]): JsonObject {
  const out: JsonObject = {};
  for (const layer of layers) {
    if (!layer) continue;
    for (const [key, value] of Object.entries(layer)) {
      const prev = out[key];
      if (value === null) delete out[key];
      else if (isObject(value)) out[key] = mergeParams(isObject(prev) ? prev : {}, value);
      else out[key] = structuredClone(value);
    }
  }
  return out;
}
