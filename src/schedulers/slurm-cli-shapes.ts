// Slurm through its command-line tools (sbatch, squeue, sacct, scancel): argv builders and output
// parsers. Pure: no processes. The runner is slurm-cli.ts.
//
// Parameters use the Slurm REST field names (extraSlurmParams, slurm-extra-submission-params), so
// a derivation written for the REST backend works here: SBATCH_OPTIONS maps each field of the
// default allow-list (hook/derivation-params.ts) onto an sbatch option, or refuses it by name.
// Every option is written `--name=value`, so no value can be read as another option.
import type { JobSpec, JobState, JobStatus, JsonObject, JsonValue } from "./scheduler.ts";
import { isTerminal, mergeParams, SchedulerError, type SchedulerErrorKind } from "./scheduler.ts";
import { decodeWaitStatus, noVal, normaliseState, normaliseVersion, parseJobResponse, SUPPORTED_VERSIONS } from "./slurm-rest-shapes.ts";

/** How a REST field's value becomes an option value. */
type ValueKind =
  | "count" // non-negative integer (or {set, number})
  | "mib" // memory in MiB (REST's unit), written with an M suffix
  | "minutes" // time in minutes; infinite → UNLIMITED
  | "text" // a string (a number is written as is)
  | "list" // a string, or a list of strings joined with ','
  | "flag" // true → the bare option, false → nothing
  | "epoch"; // unix seconds → now+N seconds (no time zone to get wrong)

interface OptionRule {
  option: string;
  kind: ValueKind;
}

const rule = (option: string, kind: ValueKind): OptionRule => ({ option, kind });

/** REST job_desc field → sbatch option. The README's slurm-cli table is this table. */
export const SBATCH_OPTIONS: Readonly<Record<string, OptionRule>> = {
  // set by nsh itself from the JobSpec (and overridable by slurm-extra-submission-params, as in REST)
  name: rule("--job-name", "text"),
  current_working_directory: rule("--chdir", "text"),
  standard_output: rule("--output", "text"),
  standard_error: rule("--error", "text"),
  comment: rule("--comment", "text"),
  // CPUs and tasks
  cpus_per_task: rule("--cpus-per-task", "count"),
  minimum_cpus_per_node: rule("--mincpus", "count"),
  tasks: rule("--ntasks", "count"),
  tasks_per_node: rule("--ntasks-per-node", "count"),
  tasks_per_socket: rule("--ntasks-per-socket", "count"),
  tasks_per_core: rule("--ntasks-per-core", "count"),
  ntasks_per_tres: rule("--ntasks-per-gpu", "count"),
  threads_per_core: rule("--threads-per-core", "count"),
  cores_per_socket: rule("--cores-per-socket", "count"),
  sockets_per_node: rule("--sockets-per-node", "count"),
  core_specification: rule("--core-spec", "count"),
  thread_specification: rule("--thread-spec", "count"),
  overcommit: rule("--overcommit", "flag"),
  // memory and local disk
  memory_per_node: rule("--mem", "mib"),
  memory_per_cpu: rule("--mem-per-cpu", "mib"),
  memory_per_gpu: rule("--mem-per-gpu", "mib"),
  temporary_disk_per_node: rule("--tmp", "mib"),
  // GPUs, generic resources, TRES, licenses
  gres: rule("--gres", "list"),
  gres_flags: rule("--gres-flags", "text"),
  gpus: rule("--gpus", "text"),
  gpus_per_node: rule("--gpus-per-node", "text"),
  gpus_per_socket: rule("--gpus-per-socket", "text"),
  gpus_per_task: rule("--gpus-per-task", "text"),
  cpus_per_gpu: rule("--cpus-per-gpu", "count"),
  tres_per_task: rule("--tres-per-task", "list"),
  licenses: rule("--licenses", "list"),
  // time, and when the job may start
  time_limit: rule("--time", "minutes"),
  time_minimum: rule("--time-min", "minutes"),
  begin_time: rule("--begin", "epoch"),
  deadline: rule("--deadline", "epoch"),
  hold: rule("--hold", "flag"),
  nice: rule("--nice", "text"),
  // where it runs and what it is charged to
  partition: rule("--partition", "text"),
  qos: rule("--qos", "text"),
  account: rule("--account", "text"),
  wckey: rule("--wckey", "text"),
  reservation: rule("--reservation", "text"),
  constraints: rule("--constraint", "text"),
  prefer: rule("--prefer", "text"),
  batch_features: rule("--batch", "text"),
  nodes: rule("--nodes", "text"),
  required_nodes: rule("--nodelist", "list"),
  excluded_nodes: rule("--exclude", "list"),
  contiguous: rule("--contiguous", "flag"),
  oversubscribe: rule("--oversubscribe", "flag"),
  spread_job: rule("--spread-job", "flag"),
  segment_size: rule("--segment", "count"),
  distribution: rule("--distribution", "text"),
};

/** Fields handled by hand below (they combine or take several shapes). */
const SPECIAL = new Set(["exclusive", "shared", "minimum_nodes", "maximum_nodes", "required_switches", "wait_for_switch"]);

/** Allow-listed REST fields sbatch has no option for: refused by name instead of dropped. */
export const NO_SBATCH_OPTION: Readonly<Record<string, string>> = {
  minimum_cpus: "use cpus_per_task or tasks",
  maximum_cpus: "sbatch cannot cap a job's CPUs",
  tasks_per_board: "sbatch has no --ntasks-per-board",
  minimum_boards_per_node: "sbatch has no boards option",
  minimum_sockets_per_board: "sbatch has no boards option",
  memory_per_tres: "use memory_per_gpu",
  cpus_per_tres: "use cpus_per_gpu",
  tres_per_job: "use gpus or licenses",
  tres_per_node: "use gres or gpus_per_node",
  tres_per_socket: "use gpus_per_socket",
};

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isNoVal = (v: unknown): v is { set?: boolean; infinite?: boolean; number?: number } =>
  isObj(v) && Object.keys(v).length > 0 && Object.keys(v).every((k) => k === "set" || k === "infinite" || k === "number");

const bad = (key: string, value: unknown, want: string): SchedulerError =>
  new SchedulerError("config", `Slurm parameter '${key}': expected ${want}, got ${JSON.stringify(value)}`);

/** One field's option value; null: write nothing (false flag, {set: false}). */
function optionValue(key: string, kind: ValueKind, value: JsonValue, nowSec: number): string | true | null {
  if (isNoVal(value) && value.set === false) return null;
  if (kind === "flag") {
    if (typeof value !== "boolean") throw bad(key, value, "true or false");
    return value ? true : null;
  }
  if (kind === "minutes" && (value === "UNLIMITED" || value === "INFINITE" || (isNoVal(value) && value.infinite))) return "UNLIMITED";
  if (kind === "count" || kind === "mib" || kind === "minutes" || kind === "epoch") {
    const n = typeof value === "string" && /^\d+$/.test(value) ? Number(value) : noVal(value);
    if (n === null || !Number.isSafeInteger(n) || n < 0) throw bad(key, value, "a non-negative integer");
    if (kind === "mib") return `${n}M`;
    if (kind === "epoch") return `now+${Math.max(0, n - nowSec)}`;
    return String(n);
  }
  const items = kind === "list" && Array.isArray(value) ? value : [value];
  const words = items.map((v) => {
    if (typeof v === "number" && Number.isFinite(v)) return String(v);
    if (typeof v !== "string" || v === "" || /[\0\n]/.test(v)) throw bad(key, value, kind === "list" ? "a string or a list of strings" : "a non-empty string");
    return v;
  });
  return words.join(",");
}

/** exclusive / shared / oversubscribe in their REST shapes → --exclusive[=user|mcs] or --oversubscribe. */
function sharingOptions(job: JsonObject): string[] {
  const out: string[] = [];
  const ex = job.exclusive;
  if (ex !== undefined) {
    if (ex === true) out.push("--exclusive");
    else if (ex === "user" || ex === "mcs") out.push(`--exclusive=${ex}`);
    else if (ex !== false) throw bad("exclusive", ex, "true, false, \"user\" or \"mcs\"");
  }
  const shared = job.shared === undefined ? [] : Array.isArray(job.shared) ? job.shared : [job.shared];
  for (const s of shared) {
    if (s === "oversubscribe") out.push("--oversubscribe");
    else if (s === "user" || s === "mcs") out.push(`--exclusive=${s}`);
    else if (s === "none") out.push("--exclusive");
    else throw bad("shared", job.shared, "\"none\", \"oversubscribe\", \"user\" or \"mcs\"");
  }
  return out;
}

/** minimum_nodes/maximum_nodes → --nodes=MIN[-MAX]; required_switches[/wait_for_switch] → --switches=N[@MIN]. */
function combinedOptions(job: JsonObject, nowSec: number): string[] {
  const out: string[] = [];
  const min = job.minimum_nodes === undefined ? null : optionValue("minimum_nodes", "count", job.minimum_nodes, nowSec);
  const max = job.maximum_nodes === undefined ? null : optionValue("maximum_nodes", "count", job.maximum_nodes, nowSec);
  if ((min !== null || max !== null) && job.nodes !== undefined) {
    throw new SchedulerError("config", "Slurm parameters 'nodes' and 'minimum_nodes'/'maximum_nodes' both say how many nodes: give one");
  }
  if (min !== null || max !== null) out.push(`--nodes=${min ?? 1}${max !== null ? `-${max}` : ""}`);
  if (job.wait_for_switch !== undefined && job.required_switches === undefined) {
    throw new SchedulerError("config", "Slurm parameter 'wait_for_switch' needs 'required_switches' (sbatch --switches=N@TIME)");
  }
  if (job.required_switches !== undefined) {
    const n = optionValue("required_switches", "count", job.required_switches, nowSec);
    const wait = job.wait_for_switch === undefined ? null : optionValue("wait_for_switch", "count", job.wait_for_switch, nowSec);
    // REST's wait_for_switch is seconds; sbatch's @time takes minutes unless written as M:S.
    if (n !== null) out.push(`--switches=${n}${wait !== null ? `@0:${wait}` : ""}`);
  }
  return out;
}

/** environment from either REST shape ({"K":"V"} or ["K=V"]). */
function envMap(value: JsonValue | undefined): Record<string, string> {
  if (Array.isArray(value)) {
    const out: Record<string, string> = {};
    for (const item of value.map(String)) if (item.indexOf("=") > 0) out[item.slice(0, item.indexOf("="))] = item.slice(item.indexOf("=") + 1);
    return out;
  }
  return isObj(value) ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, String(v)])) : {};
}

// Slurm refuses a batch job without any environment (as in the REST backend).
const FALLBACK_ENV = { PATH: "/usr/local/bin:/usr/bin:/bin" };

export interface SbatchCall {
  /** the arguments after sbatch itself */
  args: string[];
  /** sbatch's whole environment, which is the job's (--export=ALL); values never go into argv */
  env: Record<string, string>;
}

/**
 * sbatch's argv and environment for a job. Merge order as in the REST backend (later wins): the
 * spec's own fields < spec.extra (extraSlurmParams) < extraParams (slurm-extra-submission-params).
 * The script is not here: it goes to sbatch's stdin. The job's environment is sbatch's own
 * environment with --export=ALL, so no value of it is in argv (world-readable in /proc/PID/cmdline);
 * /proc/PID/environ is readable only by the same user and root.
 */
export function buildSbatch(spec: JobSpec, extraParams: JsonObject = {}, nowSec = Math.floor(Date.now() / 1000)): SbatchCall {
  const base: JsonObject = { name: spec.name, current_working_directory: spec.workingDirectory };
  if (spec.stdout !== undefined) base.standard_output = spec.stdout;
  if (spec.stderr !== undefined) base.standard_error = spec.stderr;
  if (spec.timeLimitMinutes !== undefined) base.time_limit = spec.timeLimitMinutes;
  const { environment: envD, ...fromDrv } = spec.extra ?? {};
  const { environment: envS, ...fromSetting } = extraParams;
  const job = mergeParams(base, fromDrv, fromSetting);
  const unknown = Object.keys(job).filter((k) => !(k in SBATCH_OPTIONS) && !SPECIAL.has(k));
  if (unknown.length > 0) {
    const why = unknown.map((k) => (NO_SBATCH_OPTION[k] ? `'${k}' (${NO_SBATCH_OPTION[k]})` : `'${k}'`)).join(", ");
    throw new SchedulerError("config", `Slurm parameters with no sbatch option in nsh's slurm-cli table: ${why}; nothing was submitted`);
  }
  if (spec.tag) {
    const mine = typeof job.comment === "string" ? job.comment.trim() : "";
    job.comment = mine === "" ? spec.tag : mine.split(/\s+/).includes(spec.tag) ? mine : `${mine} ${spec.tag}`;
  }
  const args = ["--parsable", "--export=ALL"];
  for (const [key, value] of Object.entries(job)) {
    const r = SBATCH_OPTIONS[key];
    if (!r) continue;
    const v = optionValue(key, r.kind, value, nowSec);
    if (v === true) args.push(r.option);
    else if (v !== null) args.push(`${r.option}=${v}`);
  }
  args.push(...combinedOptions(job, nowSec), ...sharingOptions(job));
  let env: Record<string, string> = { ...spec.environment };
  for (const layer of [envD, envS]) env = layer === null ? {} : { ...env, ...envMap(layer) };
  // sbatch reads these from its own environment as its options: they would change the submission.
  const steering = Object.keys(env).filter((k) => k.startsWith("SBATCH_") || k.startsWith("SLURM_"));
  if (steering.length > 0) {
    throw new SchedulerError("config", `job environment sets ${steering.join(", ")}, which sbatch would read as its own options; nothing was submitted`);
  }
  if (Object.keys(env).length === 0) env = { ...FALLBACK_ENV };
  return { args, env };
}

/** sbatch --parsable's "JOBID" or "JOBID;CLUSTER". */
export function parseSbatchOutput(stdout: string): string | null {
  const first = stdout.trim().split("\n").pop()?.split(";")[0]?.trim() ?? "";
  return /^\d+(_\d+)?$/.test(first) ? first : null;
}

/** `slurm-wlm 22.05.8` / `slurm 23.11.1` → [22, 5, 8]. */
export function parseSlurmVersion(text: string): { release: string; major: number; minor: number } | null {
  const m = /\bslurm(?:-wlm)?\s+((\d+)\.(\d+)(?:\.\d+)?\S*)/i.exec(text);
  return m ? { release: m[1]!, major: Number(m[2]), minor: Number(m[3]) } : null;
}

/**
 * squeue --json honours -j and -t only from 23.02 on: 22.05's dumps every job it knows (measured,
 * ~3.9 KB each), so 22.05 and unknown versions use a delimited --Format with the filters.
 */
export const squeueUsesJson = (v: { major: number; minor: number } | null): boolean => v !== null && (v.major > 23 || (v.major === 23 && v.minor >= 2));

// Comment last: it is the only field that may hold the delimiter, so it takes the rest of the line.
const SQUEUE_FIELDS = "JobID:|,State:|,Reason:|,NodeList:|,TimeLimit:|,StartTime:|,EndTime:|,exit_code:|,Comment:";

/** One squeue for many jobs; times as unix seconds come from SLURM_TIME_FORMAT=%s in its environment. */
export function squeueArgs(ids: readonly string[], json: boolean): string[] {
  return json ? ["--json", "-t", "all", "-j", ids.join(",")] : ["-h", "-t", "all", "-j", ids.join(","), "-O", SQUEUE_FIELDS];
}

/** squeue's answer when none of the ids exists any more (exit 1): not an error, just no jobs. */
export const noSuchJobs = (stderr: string): boolean => /Invalid job id specified/i.test(stderr);

const nullWord = (s: string | undefined): string | null => (s === undefined || s === "" || s === "(null)" || s === "None" || s === "N/A" ? null : s);
const epoch = (s: string | undefined): number | null => (s !== undefined && /^\d+$/.test(s) && Number(s) > 0 ? Number(s) : null);

/** Slurm's time limit text ("UNLIMITED", "5:00", "1-02:04:00", or bare minutes) → minutes; null: none. */
export function parseTimeLimit(text: string): number | null {
  const t = text.trim();
  if (/^\d+$/.test(t)) return Number(t);
  const m = /^(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)$/.exec(t);
  if (!m) return null;
  const [d, h, mi, s] = [m[1], m[2], m[3], m[4]].map((x) => Number(x ?? 0)) as [number, number, number, number];
  // "MM:SS" when there are only two parts, as Slurm prints them
  const minutes = m[2] === undefined && m[1] === undefined ? mi + s / 60 : d * 1440 + h * 60 + mi + s / 60;
  return Math.ceil(minutes);
}

function status(id: string, words: string[], f: { reason?: string; nodes?: string; limit?: string; start?: string; end?: string }, exit: { exitCode: number | null; signal: number | null }): JobStatus {
  const state = normaliseState(words);
  const finished = isTerminal(state) || state === "completing";
  return {
    id,
    state,
    rawState: words,
    reason: nullWord(f.reason),
    nodes: nullWord(f.nodes),
    ...(finished ? exit : { exitCode: null, signal: null }),
    startTime: state === "pending" ? null : epoch(f.start),
    endTime: finished ? epoch(f.end) : null,
    timeLimitMinutes: f.limit === undefined ? undefined : parseTimeLimit(f.limit),
  };
}

/** squeue -O output (SQUEUE_FIELDS) → each job's status and comment. */
export function parseSqueueRows(text: string): { status: JobStatus; comment: string }[] {
  const out: { status: JobStatus; comment: string }[] = [];
  for (const line of text.split("\n")) {
    const f = line.split("|");
    if (f.length < 9 || !/^\d/.test(f[0]!)) continue;
    const [id, state, reason, nodes, limit, start, end, raw] = f as [string, string, string, string, string, string, string, string];
    const exit = /^\d+$/.test(raw) ? decodeWaitStatus(Number(raw)) : { exitCode: null, signal: null };
    out.push({ status: status(id, [state], { reason, nodes, limit, start, end }, exit), comment: nullWord(f.slice(8).join("|")) ?? "" });
  }
  return out;
}

export const parseSqueueFormat = (text: string): Map<string, JobStatus> => new Map(parseSqueueRows(text).map((r) => [r.status.id, r.status]));

/** squeue --json (REST job shapes of the version in meta) → statuses of the wanted ids only. */
export function parseSqueueJson(json: unknown, ids: readonly string[]): Map<string, JobStatus> {
  const meta = isObj(json) && isObj(json.meta) ? json.meta : {};
  const plugin = isObj(meta.plugin) ? meta.plugin.type : isObj(meta.plugins) ? meta.plugins.data_parser : undefined;
  const found = normaliseVersion(String(plugin ?? "").replace(/^.*\//, ""));
  const version = SUPPORTED_VERSIONS.find((v) => v === found) ?? "v0.0.38";
  const jobs = isObj(json) && Array.isArray(json.jobs) ? json.jobs.filter(isObj) : [];
  const out = new Map<string, JobStatus>();
  for (const job of jobs) {
    const id = String(job.job_id);
    if (!ids.includes(id)) continue;
    const r = parseJobResponse(version, { jobs: [job as JsonObject] }, id);
    if (r.ok) out.set(id, r.status);
  }
  return out;
}

const SACCT_FIELDS = "JobID,State,ExitCode,Reason,NodeList,Timelimit,Start,End";

/** One sacct for the jobs squeue forgot; `jobcomp`: read jobcomp/filetxt (-c) when there is no slurmdbd. */
export const sacctArgs = (ids: readonly string[], jobcomp = false): string[] => [...(jobcomp ? ["-c"] : []), "-X", "-P", "-n", "-j", ids.join(","), "-o", SACCT_FIELDS];

export const accountingDisabled = (stderr: string): boolean => /accounting storage is disabled/i.test(stderr);

/** "3:0" (exit code : signal) → the pair; a signal wins over the exit code. */
export function parseExitPair(text: string): { exitCode: number | null; signal: number | null } {
  const m = /^(\d+):(\d+)$/.exec(text.trim());
  if (!m) return { exitCode: null, signal: null };
  return Number(m[2]) > 0 ? { exitCode: null, signal: Number(m[2]) } : { exitCode: Number(m[1]), signal: null };
}

/** sacct -P output (SACCT_FIELDS) → statuses by id; "CANCELLED by 0" counts as CANCELLED. */
export function parseSacct(text: string): Map<string, JobStatus> {
  const out = new Map<string, JobStatus>();
  for (const line of text.split("\n")) {
    const f = line.split("|");
    if (f.length < 8 || !/^\d+$/.test(f[0]!)) continue;
    const [id, state, exit, reason, nodes, limit, start, end] = f as [string, string, string, string, string, string, string, string];
    out.set(id, status(id, [state.split(" ")[0]!], { reason, nodes, limit, start, end }, parseExitPair(exit)));
  }
  return out;
}

/** A job neither squeue nor sacct knows: finished long ago, or never existed. */
export function forgottenJob(id: string, why: string): JobStatus {
  return { id, state: "unknown" as JobState, rawState: [], reason: why, nodes: null, exitCode: null, signal: null, startTime: null, endTime: null };
}

/** squeue listing of the caller's unfinished jobs with their comments, for findTagged. */
export const squeueTaggedArgs = (): string[] => ["-h", "--me", "-t", "PENDING,RUNNING,SUSPENDED,COMPLETING,CONFIGURING,REQUEUED,RESIZING", "-O", SQUEUE_FIELDS];

/** Ids of the unfinished jobs whose comment carries the tag. */
export function taggedIn(text: string, tag: string): string[] {
  return parseSqueueRows(text)
    .filter((r) => !isTerminal(r.status.state) && r.comment.split(/\s+/).includes(tag))
    .map((r) => r.status.id);
}

/** What kind of failure a tool's stderr describes. */
export function classifyFailure(stderr: string): SchedulerErrorKind {
  // sbatch without a slurm.conf (and no configless DNS record): a setting to fix, not a dead cluster
  if (/Could not establish a configuration source|Unable to process configuration file|Can't open config file/i.test(stderr)) return "config";
  if (/Unable to contact slurm controller|Connection refused|Socket timed out|Unable to establish|Communication connection failure/i.test(stderr)) return "unreachable";
  if (/authenticat|credential|Invalid user|Access\/permission denied|Zero Bytes were transmitted|munge/i.test(stderr)) return "auth";
  return "rejected";
}

/** The tool's error lines without its "sbatch: error: " prefixes. */
export const errorLines = (stderr: string): string[] =>
  stderr.split("\n").map((l) => l.replace(/^\s*\w+: (?:error|fatal): /, "").trim()).filter((l) => l !== "");
