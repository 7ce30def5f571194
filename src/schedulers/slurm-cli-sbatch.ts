// sbatch's argv and environment for a JobSpec. Pure: no processes. The runner is slurm-cli.ts.
//
// Parameters use the Slurm REST field names (extraSlurmParams, slurm-extra-submission-params), so
// a derivation written for the REST backend works here: SBATCH_OPTIONS maps each field of the
// default allow-list (hook/derivation-params.ts) onto an sbatch option, or refuses it by name.
// Every option is written `--name=value`, so no value can be read as another option.
import type { JobSpec, JsonObject, JsonValue } from "./scheduler.ts";
import { mergeParams, SchedulerError } from "./scheduler.ts";
import { noVal } from "./slurm-rest-shapes.ts";

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
const SPECIAL = new Set(["exclusive", "shared", "minimum_nodes", "maximum_nodes", "required_switches",
  "wait_for_switch"]);

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
  isObj(v) && Object.keys(v).length > 0 &&
  Object.keys(v).every((k) => k === "set" || k === "infinite" || k === "number");

const bad = (key: string, value: unknown, want: string): SchedulerError =>
  new SchedulerError("config", `Slurm parameter '${key}': expected ${want}, got ${JSON.stringify(value)}`);

/** One field's option value; null: write nothing (false flag, {set: false}). */
function optionValue(key: string, kind: ValueKind, value: JsonValue, nowSec: number): string | true | null {
  if (isNoVal(value) && value.set === false) return null;
  if (kind === "flag") {
    if (typeof value !== "boolean") throw bad(key, value, "true or false");
    return value ? true : null;
  }
  const infinite = value === "UNLIMITED" || value === "INFINITE" || (isNoVal(value) && value.infinite === true);
  if (kind === "minutes" && infinite) return "UNLIMITED";
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
    if (typeof v !== "string" || v === "" || /[\0\n]/.test(v)) {
      throw bad(key, value, kind === "list" ? "a string or a list of strings" : "a non-empty string");
    }
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
    const what = "Slurm parameters 'nodes' and 'minimum_nodes'/'maximum_nodes' both say how many nodes: give one";
    throw new SchedulerError("config", what);
  }
  if (min !== null || max !== null) out.push(`--nodes=${min ?? 1}${max !== null ? `-${max}` : ""}`);
  if (job.wait_for_switch !== undefined && job.required_switches === undefined) {
    const what = "Slurm parameter 'wait_for_switch' needs 'required_switches' (sbatch --switches=N@TIME)";
    throw new SchedulerError("config", what);
  }
  if (job.required_switches !== undefined) {
    const n = optionValue("required_switches", "count", job.required_switches, nowSec);
    const w = job.wait_for_switch;
    const wait = w === undefined ? null : optionValue("wait_for_switch", "count", w, nowSec);
    // REST's wait_for_switch is seconds; sbatch's @time takes minutes unless written as M:S.
    if (n !== null) out.push(`--switches=${n}${wait !== null ? `@0:${wait}` : ""}`);
  }
  return out;
}

/** environment from either REST shape ({"K":"V"} or ["K=V"]). */
function envMap(value: JsonValue | undefined): Record<string, string> {
  if (Array.isArray(value)) {
    const out: Record<string, string> = {};
    for (const item of value.map(String)) {
      const eq = item.indexOf("=");
      if (eq > 0) out[item.slice(0, eq)] = item.slice(eq + 1);
    }
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
export function buildSbatch(
  spec: JobSpec,
  extraParams: JsonObject = {},
  nowSec = Math.floor(Date.now() / 1000),
): SbatchCall {
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
    const what = `Slurm parameters with no sbatch option in nsh's slurm-cli table: ${why}; nothing was submitted`;
    throw new SchedulerError("config", what);
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
    const what = `job environment sets ${steering.join(", ")}, which sbatch would read as its own options`;
    throw new SchedulerError("config", `${what}; nothing was submitted`);
  }
  if (Object.keys(env).length === 0) env = { ...FALLBACK_ENV };
  return { args, env };
}

/** sbatch --parsable's "JOBID" or "JOBID;CLUSTER". */
export function parseSbatchOutput(stdout: string): string | null {
  const first = stdout.trim().split("\n").pop()?.split(";")[0]?.trim() ?? "";
  return /^\d+(_\d+)?$/.test(first) ? first : null;
}

