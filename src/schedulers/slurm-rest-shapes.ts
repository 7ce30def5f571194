// Slurm REST (slurmrestd) request and response shapes for API v0.0.38 … v0.0.45. Pure: no I/O.
//
// Where the shapes come from (see test/unit/slurm-rest-shapes.test.ts for examples):
// * v0.0.38 (Slurm 22.05): the OpenAPI document served by 22.05.8 and replies captured from it.
//   Job fields are plain integers, `environment` is an object, `script` is top level, job_state is
//   one string, exit_code the raw wait status (`exit 3` → 768), times plain unix seconds.
// * v0.0.39 (23.02): data_parser/v0.0.39. `environment` becomes a list of "K=V", time_limit and
//   memory fields become {set, infinite, number}; job_state stays a string, times stay numbers,
//   exit_code is the raw wait status (a {set, number} object since 23.02.4).
// * v0.0.40 (23.11): job_state becomes a list (base state plus flags), exit_code becomes
//   {status: [...], return_code: {set, number}, signal: {id, name}}, times {set, infinite, number}.
// * v0.0.41 (24.05) … v0.0.44 (25.11): top-level `script` is deprecated in favour of `job.script`;
//   otherwise the same shapes.
// * v0.0.45 (26.05): the OpenAPI document served by 26.05.5: job_desc_msg drops power_flags and adds
//   container_type, cores_per_socket, memory_update_delay/margin; the ping drops `pinged` and `mode`
//   and adds a `status` text; every field nsh sends or reads is unchanged.
// Errors everywhere are {error, error_number, description, source},
//   except 22.05's submit errors, which say `error_code`.
import type { JobSpec, JobState, JobStatus, JsonObject, JsonValue } from "./scheduler.ts";
import { isTerminal, mergeParams } from "./scheduler.ts";

export const SUPPORTED_VERSIONS = [
  "v0.0.38", "v0.0.39", "v0.0.40", "v0.0.41", "v0.0.42", "v0.0.43", "v0.0.44", "v0.0.45",
] as const;
export type ApiVersion = (typeof SUPPORTED_VERSIONS)[number];

const minor = (v: string): number => Number(/^v?0\.0\.(\d+)$/.exec(v)?.[1] ?? Number.NaN);

/** "v0.0.40" or "0.0.40" → "v0.0.40"; anything else → null. */
export function normaliseVersion(v: string): string | null {
  const m = /^v?(\d+)\.(\d+)\.(\d+)$/.exec(v.trim());
  return m ? `v${m[1]}.${m[2]}.${m[3]}` : null;
}

/** The /slurm/vX.Y.Z/ versions an OpenAPI document names, oldest first. */
export function servedVersions(openapi: unknown): string[] {
  const paths = Object.keys((openapi as { paths?: Record<string, unknown> } | null)?.paths ?? {});
  const found = new Set(paths.map((p) => /^\/slurm\/(v\d+\.\d+\.\d+)\//.exec(p)?.[1]).filter((v) => v !== undefined));
  return [...found].sort((a, b) => minor(a) - minor(b));
}

export type Choice = { ok: true; version: ApiVersion } | { ok: false; error: string };

/** The newest version both sides know, or the wanted one if both know it; errors list both sides. */
export function chooseVersion(served: string[], wanted: string, supported: readonly ApiVersion[] = SUPPORTED_VERSIONS): Choice {
  const ours = `nsh supports ${supported.join(", ")}`;
  const theirs = `slurmrestd serves ${served.length > 0 ? served.join(", ") : "none of the /slurm/ versions"}`;
  if (wanted !== "auto") {
    const v = normaliseVersion(wanted);
    const known = supported.find((s) => s === v);
    if (!known) return { ok: false, error: `slurm-api-version '${wanted}' is not a version nsh knows (${ours})` };
    if (served.length > 0 && !served.includes(known)) return { ok: false, error: `slurm-api-version ${known} is not served (${theirs}; ${ours})` };
    return { ok: true, version: known };
  }
  const common = supported.filter((s) => served.includes(s)).sort((a, b) => minor(b) - minor(a));
  if (common[0]) return { ok: true, version: common[0] };
  return { ok: false, error: `no Slurm REST API version in common: ${theirs}; ${ours}` };
}

export const apiPath = {
  ping: (v: string): string => `/slurm/${v}/ping`,
  submit: (v: string): string => `/slurm/${v}/job/submit`,
  job: (v: string, id: string): string => `/slurm/${v}/job/${encodeURIComponent(id)}`,
  jobs: (v: string): string => `/slurm/${v}/jobs`,
};

// Job description fields that take {set, infinite, number} from this version on (from each
// version's OpenAPI job_desc_msg); v0.0.38 takes plain integers for all of them.
const NO_VAL_FIELDS: Record<number, readonly string[]> = {
  39: ["kill_warning_delay", "memory_per_cpu", "memory_per_node", "required_switches", "time_limit", "time_minimum"],
  40: ["begin_time", "priority"],
  41: ["distribution_plane_size", "segment_size"],
};
const noValFields = (v: string): Set<string> =>
  new Set(Object.entries(NO_VAL_FIELDS).flatMap(([since, fields]) => (minor(v) >= Number(since) ? fields : [])));

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isNoValStruct = (v: unknown): v is { set?: boolean; infinite?: boolean; number?: number } =>
  isObj(v) && Object.keys(v).length > 0 && Object.keys(v).every((k) => k === "set" || k === "infinite" || k === "number");

/**
 * Params written for one version work on the others: v0.0.38 gets plain numbers ({set:false}
 * drops the field, infinite becomes "UNLIMITED", which its option parser reads like sbatch);
 * later versions get {set, infinite, number} for their no-val fields.
 */
function adaptNumbers(v: string, job: JsonObject): JsonObject {
  const out: JsonObject = { ...job };
  const wrap = noValFields(v);
  for (const [key, value] of Object.entries(job)) {
    if (minor(v) <= 38 && isNoValStruct(value)) {
      if (value.infinite) out[key] = "UNLIMITED";
      else if (value.set === false) delete out[key];
      else if (typeof value.number === "number") out[key] = value.number;
    } else if (wrap.has(key) && typeof value === "number") {
      out[key] = { set: true, infinite: false, number: value };
    }
  }
  return out;
}

/** environment as a map, from either shape ({"K":"V"} or ["K=V"]). */
function envMap(value: JsonValue | undefined): Record<string, string> {
  if (Array.isArray(value)) {
    const out: Record<string, string> = {};
    for (const item of value) {
      const s = String(item);
      const eq = s.indexOf("=");
      if (eq > 0) out[s.slice(0, eq)] = s.slice(eq + 1);
    }
    return out;
  }
  if (isObj(value)) return Object.fromEntries(Object.entries(value).map(([k, val]) => [k, String(val)]));
  return {};
}

// Slurm refuses a batch job without any environment (error 2127 "environment must be set").
const FALLBACK_ENV = { PATH: "/usr/local/bin:/usr/bin:/bin" };

/**
 * The job_submit_req body. Merge order (later wins, objects deep-merged, null deletes):
 * fields from `spec` < spec.extra (the derivation's extraSlurmParams) < extraParams (the
 * slurm-extra-submission-params setting). `environment` merges key by key in either shape.
 */
export function buildSubmitRequest(version: ApiVersion, spec: JobSpec, extraParams: JsonObject = {}): JsonObject {
  const base: JsonObject = { name: spec.name, current_working_directory: spec.workingDirectory };
  if (spec.stdout !== undefined) base.standard_output = spec.stdout;
  if (spec.stderr !== undefined) base.standard_error = spec.stderr;
  if (spec.timeLimitMinutes !== undefined) base.time_limit = spec.timeLimitMinutes;
  const { environment: envD, ...fromDrv } = spec.extra ?? {};
  const { environment: envS, ...fromSetting } = extraParams;
  let env: Record<string, string> = { ...spec.environment };
  for (const layer of [envD, envS]) env = layer === null ? {} : { ...env, ...envMap(layer) };
  if (Object.keys(env).length === 0) env = { ...FALLBACK_ENV };
  const job = adaptNumbers(version, mergeParams(base, fromDrv, fromSetting));
  // The tag goes into the comment whatever the parameters say; a comment of the user's is kept.
  if (spec.tag) {
    const mine = typeof job.comment === "string" ? job.comment.trim() : "";
    job.comment = mine === "" ? spec.tag : mine.split(/\s+/).includes(spec.tag) ? mine : `${mine} ${spec.tag}`;
  }
  job.environment = minor(version) <= 38 ? env : Object.entries(env).map(([k, val]) => `${k}=${val}`);
  if (minor(version) <= 40) return { script: spec.script, job };
  return { job: { ...job, script: spec.script } };
}

export interface SlurmApiError {
  message: string;
  code: number | null;
  source: string | null;
}

/** The errors[] of any version's reply; empty when there are none or the reply is not an object. */
export function parseErrors(json: unknown): SlurmApiError[] {
  const list = isObj(json) && Array.isArray(json.errors) ? json.errors : [];
  return list.filter(isObj).map((e) => {
    const words = [e.error, e.description].filter((s): s is string => typeof s === "string" && s.trim() !== "");
    const code = typeof e.error_number === "number" ? e.error_number : typeof e.error_code === "number" ? e.error_code : null;
    const message = [...new Set(words.map((s) => s.trim()))].join(": ") || "unspecified error";
    return { message, code, source: typeof e.source === "string" && e.source !== "" ? e.source : null };
  });
}

export const formatErrors = (errors: SlurmApiError[]): string =>
  errors.map((e) => `${e.message}${e.code !== null && e.code > 0 ? ` (error ${e.code})` : ""}${e.source ? ` [${e.source}]` : ""}`).join("; ");

/** warnings[]: {description, source} (v0.0.39 also says `warning`). */
export function parseWarnings(json: unknown): string[] {
  const list = isObj(json) && Array.isArray(json.warnings) ? json.warnings : [];
  return list.filter(isObj).map((w) => [w.warning, w.description, w.source].filter((s) => typeof s === "string" && s !== "").join(" "));
}

export type SubmitResult =
  | { ok: true; jobId: string; warnings: string[]; userMessage: string | null }
  | { ok: false; message: string; errors: SlurmApiError[] };

/** job_id from a submit reply (top level in every version; v0.0.41 also has result.job_id). */
export function parseSubmitResponse(version: ApiVersion, json: unknown): SubmitResult {
  const errors = parseErrors(json);
  const result = isObj(json) && isObj(json.result) ? json.result : {};
  const id = isObj(json) ? (json.job_id ?? result.job_id) : undefined;
  if (typeof id === "number" && Number.isInteger(id) && id > 0) {
    // A job id means a job exists: never drop it, report any errors alongside as warnings.
    const msg = isObj(json) ? (json.job_submit_user_msg ?? result.job_submit_user_msg) : undefined;
    const warnings = [...parseWarnings(json), ...errors.map((e) => e.message)];
    return { ok: true, jobId: String(id), warnings, userMessage: typeof msg === "string" && msg !== "" ? msg : null };
  }
  if (errors.length > 0) return { ok: false, message: `Slurm refused the job (${version}): ${formatErrors(errors)}`, errors };
  return { ok: false, message: `Slurm's submit reply (${version}) has no job_id and no error`, errors };
}

/** A number from a plain integer or {set, infinite, number}; null when unset or infinite. */
export function noVal(v: unknown): number | null {
  if (typeof v === "number") return v;
  if (isNoValStruct(v) && v.set !== false && !v.infinite && typeof v.number === "number") return v.number;
  return null;
}

const BASE_STATES: Record<string, JobState> = {
  PENDING: "pending",
  RUNNING: "running",
  SUSPENDED: "running", // keeps its allocation and resumes
  COMPLETED: "completed",
  CANCELLED: "cancelled",
  FAILED: "failed",
  TIMEOUT: "timeout",
  DEADLINE: "timeout",
  NODE_FAIL: "node_fail",
  BOOT_FAIL: "node_fail",
  PREEMPTED: "failed", // ended by the scheduler, not by us: the build did not finish
  OUT_OF_MEMORY: "out_of_memory",
};
// Flags; 22.05's single-string job_state shows a set flag instead of the base state.
const FLAG_STATES: Record<string, JobState> = {
  COMPLETING: "completing",
  STAGE_OUT: "completing",
  CONFIGURING: "running",
  RESIZING: "running",
  SIGNALING: "running",
  STOPPED: "running",
  POWER_UP_NODE: "pending",
  REQUEUED: "pending",
  REQUEUE_HOLD: "pending",
  REQUEUE_FED: "pending",
  RESV_DEL_HOLD: "pending",
  LAUNCH_FAILED: "failed",
  SPECIAL_EXIT: "failed",
  RECONFIG_FAIL: "node_fail",
  REVOKED: "cancelled",
};

/** Slurm's state words (one string, or base state plus flags) → one normalised state. */
export function normaliseState(words: string[]): JobState {
  const upper = words.map((w) => w.toUpperCase());
  // Completing overrides the base state: the job's processes are still being cleaned up.
  if (upper.some((w) => FLAG_STATES[w] === "completing")) return "completing";
  const base = upper.find((w) => w in BASE_STATES);
  if (base) return BASE_STATES[base]!;
  const flag = upper.find((w) => w in FLAG_STATES);
  return flag ? FLAG_STATES[flag]! : "unknown";
}

/** A raw wait status (v0.0.38/39 exit_code): `exit 3` → 768, killed by SIGTERM → 15. */
export function decodeWaitStatus(raw: number): { exitCode: number | null; signal: number | null } {
  return (raw & 0x7f) === 0 ? { exitCode: (raw >> 8) & 0xff, signal: null } : { exitCode: null, signal: raw & 0x7f };
}

/** exit_code in any version: raw status (number or no-val) or verbose {status, return_code, signal}. */
export function parseExitCode(v: unknown): { exitCode: number | null; signal: number | null } {
  if (isObj(v) && ("status" in v || "return_code" in v || "signal" in v)) {
    const status = (Array.isArray(v.status) ? v.status : [v.status]).map((s) => String(s).toUpperCase());
    if (status.includes("SIGNALED") || status.includes("CORE_DUMPED")) return { exitCode: null, signal: noVal(isObj(v.signal) ? v.signal.id : null) };
    if (status.includes("SUCCESS") || status.includes("ERROR")) return { exitCode: noVal(v.return_code), signal: null };
    return { exitCode: null, signal: null };
  }
  const raw = noVal(v);
  return raw === null ? { exitCode: null, signal: null } : decodeWaitStatus(raw);
}

/**
 * A cancelled job's exit code: 24.11+ report SUCCESS / 0 for a job cancelled before it ran
 * (22.05 reports the raw status, 15 for a SIGTERM); "exit 0" would read as a success, so none.
 */
export function cancelledExit(
  status: Pick<JobStatus, "state" | "exitCode" | "signal">,
): { exitCode: number | null; signal: number | null } {
  const neverRan = status.state === "cancelled" && status.exitCode === 0 && status.signal === null;
  if (neverRan) return { exitCode: null, signal: null };
  return { exitCode: status.exitCode, signal: status.signal };
}

export type JobResult =
  | { ok: true; status: JobStatus; warnings: string[] }
  | { ok: false; notFound: boolean; message: string; errors: SlurmApiError[] };

/** time_limit in minutes; none: null on 22.05 (measured), {infinite} later, INFINITE/NO_VAL as raw numbers. */
function timeLimit(v: unknown): number | null {
  const n = noVal(v);
  return n !== null && n > 0 && n < 0xfffffffe ? n : null;
}

const INVALID_JOB_ID = 2017; // ESLURM_INVALID_JOB_ID: slurmctld does not (or no longer) know the job

/** A GET /job/{id} reply → the job's normalised status (the entry with job id `id` if given). */
export function parseJobResponse(version: ApiVersion, json: unknown, id?: string): JobResult {
  const errors = parseErrors(json);
  const jobs = isObj(json) && Array.isArray(json.jobs) ? json.jobs.filter(isObj) : [];
  const job = jobs.find((j) => String(j.job_id) === id) ?? jobs[0];
  if (!job) {
    const notFound = errors.some((e) => e.code === INVALID_JOB_ID);
    const what = errors.length > 0 ? formatErrors(errors) : "the reply lists no such job";
    return { ok: false, notFound, message: `job ${id ?? "?"} (${version}): ${what}`, errors };
  }
  const words = Array.isArray(job.job_state) ? job.job_state.map(String) : typeof job.job_state === "string" ? [job.job_state] : [];
  const state = normaliseState(words);
  const finished = isTerminal(state) || state === "completing";
  const time = (v: unknown): number | null => {
    const n = noVal(v);
    return n !== null && n > 0 ? n : null;
  };
  const reason = typeof job.state_reason === "string" && job.state_reason !== "" && job.state_reason !== "None" ? job.state_reason : null;
  const nodes = typeof job.nodes === "string" && job.nodes !== "" ? job.nodes : null;
  // Before the end Slurm reports estimates (expected start, start + time limit): not times.
  const exit = finished ? cancelledExit({ state, ...parseExitCode(job.exit_code) }) : { exitCode: null, signal: null };
  return {
    ok: true,
    warnings: parseWarnings(json),
    status: {
      id: String(job.job_id ?? id ?? ""),
      state,
      rawState: words,
      reason,
      nodes,
      exitCode: exit.exitCode,
      signal: exit.signal,
      startTime: state === "pending" ? null : time(job.start_time),
      endTime: finished ? time(job.end_time) : null,
      timeLimitMinutes: timeLimit(job.time_limit),
    },
  };
}

/**
 * A GET /jobs reply → the statuses of `ids` (one request for many jobs). A job the list no longer
 * holds (gone after MinJobAge) is "unknown", as a GET /job/{id} answered "Invalid job id" would be.
 */
export function listedStatuses(version: ApiVersion, json: unknown, ids: readonly string[]): Map<string, JobStatus> {
  const jobs = isObj(json) && Array.isArray(json.jobs) ? json.jobs.filter(isObj) : [];
  const byId = new Map(jobs.map((j) => [String(j.job_id), j]));
  const out = new Map<string, JobStatus>();
  for (const id of ids) {
    const job = byId.get(id);
    const parsed = job ? parseJobResponse(version, { jobs: [job] }, id) : undefined;
    if (parsed?.ok) out.set(id, parsed.status);
    else {
      const reason = `slurmctld no longer lists job ${id}`;
      out.set(id, { id, state: "unknown", rawState: [], reason, nodes: null, exitCode: null, signal: null, startTime: null, endTime: null });
    }
  }
  return out;
}

/** A GET /jobs reply → ids of the unfinished jobs whose comment carries `tag`. */
export function taggedJobs(json: unknown, tag: string): string[] {
  const jobs = isObj(json) && Array.isArray(json.jobs) ? json.jobs.filter(isObj) : [];
  return jobs
    .filter((j) => typeof j.comment === "string" && j.comment.split(/\s+/).includes(tag))
    .filter((j) => {
      const words = Array.isArray(j.job_state) ? j.job_state.map(String) : typeof j.job_state === "string" ? [j.job_state] : [];
      return !isTerminal(normaliseState(words));
    })
    .map((j) => String(j.job_id));
}

/**
 * slurmrestd passes the JWT to slurmctld unchecked, so on 22.05 a rejected token is an HTTP 500
 * whose errors look like these (measured: garbage, forged and expired tokens), not a 401.
 */
export function looksLikeRejectedToken(errors: SlurmApiError[]): boolean {
  return errors.some(
    (e) => e.code === 5005 || e.code === 1007 || e.source === "slurm_load_ctl_conf" || /authenticat|credential|Zero Bytes were transmitted/i.test(e.message),
  );
}

/** The JWT's claims without verifying it (for clear local errors only); null when not a JWT. */
export function jwtClaims(token: string): { exp?: number; sun?: string } | null {
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    const claims = JSON.parse(Buffer.from(parts[1]!, "base64url").toString("utf8")) as unknown;
    if (!isObj(claims)) return null;
    return { exp: typeof claims.exp === "number" ? claims.exp : undefined, sun: typeof claims.sun === "string" ? claims.sun : undefined };
  } catch {
    return null;
  }
}

/** Why a token cannot work, as far as can be told without the key; null when it may be fine. */
export function jwtProblem(token: string, nowSec: number): string | null {
  const claims = jwtClaims(token);
  if (!claims) return "it is not a JWT (three base64url parts with a JSON payload)";
  if (claims.exp !== undefined && claims.exp < nowSec) return `it expired at ${new Date(claims.exp * 1000).toISOString()}`;
  return null;
}
