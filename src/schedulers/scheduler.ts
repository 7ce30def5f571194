// The interface every job scheduler implements, and the descriptor each scheduler module registers
// (registry.ts). A build becomes one job: submit a shell script, poll its status, cancel it when the
// build is abandoned. Pure: types, the normalised states, the defaults of the optional members, and
// the JSON merge of extra parameters.
import type { Env } from "../config/nixconf.ts";
import type { NshConfig } from "../config/nsh-conf.ts";

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

/** One line of `nsh doctor`: what was checked, whether it holds, and what was found or is wrong. */
export interface DoctorCheck {
  ok: boolean;
  what: string;
  detail: string;
}

/**
 * Awaited before each request a prepare() sends to the scheduler's server (the polite layer's rate
 * limit); a prepare that asks the server nothing never waits for it.
 */
export type RequestGate = () => Promise<void>;

export interface Scheduler {
  readonly kind: "slurm" | "slurm-native" | "slurm-cli" | "pbs" | "pbs-cli";
  /**
   * Whatever must hold before a submit (negotiate an API version, check credentials, load a
   * library): a wrong token or an unreachable scheduler is said before the agent's upload.
   */
  prepare?(gate?: RequestGate): Promise<void>;
  /**
   * The job's state asked of the scheduler at once (something says it just changed, e.g. the job's
   * start notice), where status() would wait for the next of its paced polls.
   */
  statusNow?(id: string): Promise<JobStatus>;
  submit(job: JobSpec): Promise<JobHandle>;
  status(id: string): Promise<JobStatus>;
  /** The status of each of `ids` in as few calls as the scheduler allows; a job it forgot is "unknown". */
  statusMany?(ids: string[]): Promise<Map<string, JobStatus>>;
  /** Ends the job; a job that already finished is not an error. */
  cancel(id: string): Promise<void>;
  /** Ends every one of `ids` (finished ones are no error); throws when any could not be cancelled. */
  cancelMany?(ids: string[]): Promise<void>;
  /** `nsh doctor`'s lines for the scheduler itself: credentials, reachability, version. */
  doctor?(): Promise<DoctorCheck[]>;
  /** Ids of the unfinished jobs submitted with `tag` (see JobSpec.tag). */
  findTagged?(tag: string): Promise<string[]>;
  /** The bound of each request: a submit sent may still create its job until this long after. */
  readonly requestTimeoutMs?: number;
  /** one line for logs: where the scheduler is and what it speaks (never credentials) */
  describe(): string;
}

/** prepare(), or nothing for a scheduler that needs no preparing. */
export const prepareScheduler = async (s: Scheduler, gate?: RequestGate): Promise<void> => {
  if (s.prepare) await s.prepare(gate);
};

/** statusMany(), or status() of each job in turn. */
export async function statusOfMany(s: Scheduler, ids: string[]): Promise<Map<string, JobStatus>> {
  if (s.statusMany) return s.statusMany(ids);
  const out = new Map<string, JobStatus>();
  for (const id of ids) out.set(id, await s.status(id));
  return out;
}

/**
 * Cancels each of `ids`: the error of each job that could not be cancelled (absent: cancelled).
 * One cancelMany() call when the scheduler has it; when that fails, one by one to say which.
 */
export async function cancelEach(s: Scheduler, ids: string[]): Promise<Map<string, Error>> {
  const failed = new Map<string, Error>();
  if (s.cancelMany && ids.length > 1) {
    try {
      await s.cancelMany(ids);
      return failed;
    } catch {}
  }
  for (const id of ids) await s.cancel(id).catch((e: unknown) => failed.set(id, e instanceof Error ? e : new Error(String(e))));
  return failed;
}

/** doctor(), or: the scheduler prepares (or throws), described. */
export async function doctorChecks(s: Scheduler): Promise<DoctorCheck[]> {
  if (s.doctor) return s.doctor();
  await prepareScheduler(s);
  return [{ ok: true, what: s.kind, detail: s.describe() }];
}

export interface CreateOptions {
  /** the scheduler's lines: requests (for debugging) and warnings; default: warnings to stderr */
  log?: (line: string) => void;
  /** lines only for debugging (each tool call, a shim compiled) when the scheduler tells them apart; default: dropped */
  debug?: (line: string) => void;
  /** the local state directory: what one hook negotiated saves the next one a request */
  memoDir?: string;
}

/**
 * A scheduler module as the registry knows it: light (no scheduler code is loaded to read it), so
 * a hook that declines a build, or checks its setup, loads no scheduler at all.
 */
export interface SchedulerModule {
  /** its job-scheduler value in nsh.conf */
  kind: NshConfig["job-scheduler"];
  /** the derivation attribute that carries per-build scheduler parameters (derivation-params.ts) */
  paramsAttr: string;
  /** the nsh.conf settings it reads, for docs and messages */
  settings: readonly string[];
  /** what `nsh doctor` calls the scheduler's side when it cannot even be set up (e.g. "slurmrestd") */
  service: string;
  /** environment variables that carry its credentials: the reaper gets them in memory */
  secretEnv?: readonly string[];
  /** what Nix shows as the machine: `building '…drv' on 'slurm:login1'` */
  machineName(conf: NshConfig): string;
  /** how a job's time limit is named in messages, and where a derivation raises it; absent: Slurm's words */
  timeLimit?: TimeLimitWords;
  /** the host nsh reaches the cluster through when login-host is unset */
  defaultLoginHost?(conf: NshConfig): string;
  /** what it lacks before a job can be submitted, each naming the setting (readiness.ts adds the common ones) */
  missingSetup?(conf: NshConfig, env: Env, readable: (path: string) => boolean): string[];
  /** the scheduler (imports its code); absent: a job-scheduler nsh.conf knows but this nsh does not have yet */
  create?(conf: NshConfig, env: Env, opts: CreateOptions): Promise<Scheduler>;
}

/** A time limit in the scheduler's words: "PBS" and "set walltime in pbsResources". */
export interface TimeLimitWords {
  scheduler: string;
  raise: string;
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
