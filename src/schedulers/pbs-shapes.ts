// PBS's pure parts: a JobSpec turned into pbs_submit's attribute list (pbsResources checked), pbs.conf
// read, and pbs_statjob's attribute lists turned into JobStatus. Attribute names are the IFL's
// (pbs_ifl.h ATTR_*); job states and Exit_status codes are OpenPBS's (job.h).
import type { JobSpec, JobState, JobStatus, JsonObject } from "./scheduler.ts";

/** One attropl/attrl entry: `resource` is set for Resource_List.<resource>. */
export interface PbsAttr {
  name: string;
  resource?: string;
  value: string;
}

/** One job of pbs_statjob's answer. */
export interface PbsJobRecord {
  id: string;
  attrs: PbsAttr[];
}

/** The environment variable that carries a submission's tag (queried with pbs_statjob for findTagged). */
export const TAG_VARIABLE = "NSH_JOB_TAG";

/** The attributes nsh asks pbs_statjob for: a short answer even on a busy server. */
export const STATUS_ATTRS = [
  "job_state", "substate", "Exit_status", "comment", "exec_host", "stime", "obittime", "mtime",
  "Resource_List", "Variable_List",
];

export type ResourcesResult = { ok: true; value: PbsAttr[] } | { ok: false; error: string };

/**
 * pbsResources (JobSpec.extra: a JSON object of strings, each a Resource_List entry as `qsub -l`).
 * The names were checked against the allow-list upstream; here only shape: strings, no empty ones.
 */
export function parseResources(extra: JsonObject | undefined): ResourcesResult {
  const out: PbsAttr[] = [];
  const bad: string[] = [];
  for (const [name, value] of Object.entries(extra ?? {})) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) bad.push(`'${name}' is not a PBS resource name`);
    else if (typeof value !== "string") {
      bad.push(`${name} must be a string (as after qsub -l ${name}=), got ${JSON.stringify(value)}`);
    }
    else if (value.trim() === "") bad.push(`${name} is empty`);
    else out.push({ name: "Resource_List", resource: name, value: value.trim() });
  }
  if (bad.length > 0) return { ok: false, error: `pbsResources: ${bad.join("; ")}; nothing was submitted` };
  return { ok: true, value: out };
}

/** Minutes as PBS's walltime text, hh:mm:ss. */
export function walltime(minutes: number): string {
  const m = Math.max(1, Math.ceil(minutes));
  return `${String(Math.floor(m / 60)).padStart(2, "0")}:${String(m % 60).padStart(2, "0")}:00`;
}

/**
 * Variable_List's text: name=value pairs joined by commas. PBS splits on unescaped commas, so commas,
 * quotes and the backslash itself are escaped with a backslash inside values (the server's
 * parse_comma_string_bs removes exactly these escapes).
 */
export function variableList(env: Record<string, string>): string {
  const bad = Object.keys(env).filter((k) => !/^[A-Za-z_][A-Za-z0-9_]*$/.test(k));
  if (bad.length > 0) throw new Error(`environment variable names PBS cannot carry: ${bad.join(", ")}`);
  return Object.entries(env)
    .map(([k, v]) => `${k}=${v.replace(/[\\,"']/g, (c) => `\\${c}`)}`)
    .join(",");
}

/** Variable_List's text back into name → value (undoing variableList's escapes). */
export function parseVariableList(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let cur = "";
  const flush = (): void => {
    const eq = cur.indexOf("=");
    if (eq > 0) out[cur.slice(0, eq)] = cur.slice(eq + 1);
    cur = "";
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === "\\" && i + 1 < text.length) cur += text[++i];
    else if (c === ",") flush();
    else cur += c;
  }
  flush();
  return out;
}

/** PBS job names: at most 236 characters, no whitespace; the first must be printable, not a digit. */
export function jobName(name: string): string {
  const clean = name.replace(/[^A-Za-z0-9_.+-]/g, "_").slice(0, 200);
  return /^[A-Za-z_]/.test(clean) ? clean : `j${clean}`;
}

/** The attribute list pbs_submit gets for `job` (resources from parseResources). */
export function submitAttributes(job: JobSpec, resources: PbsAttr[]): PbsAttr[] {
  const env: Record<string, string> = { ...job.environment, PBS_O_WORKDIR: job.workingDirectory };
  if (job.tag) env[TAG_VARIABLE] = job.tag;
  const attrs: PbsAttr[] = [{ name: "Job_Name", value: jobName(job.name) }];
  if (job.timeLimitMinutes !== undefined && !resources.some((r) => r.resource === "walltime")) {
    attrs.push({ name: "Resource_List", resource: "walltime", value: walltime(job.timeLimitMinutes) });
  }
  attrs.push(...resources);
  // Without paths of its own a job's output goes to the submit directory as <name>.o<id>: not wanted.
  attrs.push({ name: "Output_Path", value: job.stdout ?? "/dev/null" });
  attrs.push({ name: "Error_Path", value: job.stderr ?? job.stdout ?? "/dev/null" });
  if (!job.stderr && job.stdout) attrs.push({ name: "Join_Path", value: "oe" });
  attrs.push({ name: "Variable_List", value: variableList(env) });
  // No User_List: the client already runs as the job's user (pbs-user), and PBS refuses a User_List
  // naming the owner's own name when the submit host differs from the server ("Bad UID for job execution").
  return attrs;
}

/** pbs.conf's KEY=VALUE lines (comments and blank lines skipped). */
export function parsePbsConf(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq > 0) out[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  return out;
}

const get = (r: PbsJobRecord, name: string, resource?: string): string | undefined =>
  r.attrs.find((a) => a.name === name && (resource === undefined || a.resource === resource))?.value;

const seconds = (v: string | undefined): number | null => {
  const n = v === undefined ? NaN : Number(v);
  return Number.isFinite(n) && n > 0 ? n : null;
};

/** hh:mm:ss (or mm:ss, or seconds) → minutes; null when absent or unreadable. */
export function walltimeMinutes(v: string | undefined): number | null {
  if (!v) return null;
  const parts = v.split(":").map(Number);
  if (parts.some((p) => !Number.isFinite(p))) return null;
  const secs = parts.reduce((acc, p) => acc * 60 + p, 0);
  return Math.ceil(secs / 60);
}

/** exec_host "node1/0*2+node2/1" → "node1,node2". */
export function execNodes(v: string | undefined): string | null {
  if (!v) return null;
  const hosts = [...new Set(v.split("+").map((h) => h.split("/")[0]!).filter(Boolean))];
  return hosts.length > 0 ? hosts.join(",") : null;
}

const JOB_EXEC_KILL_VMEM = -26;
const JOB_EXEC_KILL_MEM = -27;
const JOB_EXEC_KILL_CPUT = -28;
const JOB_EXEC_KILL_WALLTIME = -29;
/** job.h's JOB_EXEC_* codes PBS leaves in Exit_status when the script did not run to its end. */
const EXEC_CODES: Record<number, string> = {
  [-1]: "the job could not start (before its files were staged)",
  [-2]: "the job could not start (after its files were staged)",
  [-3]: "the job could not start and is retried",
  [-4]: "the job was aborted while MoM initialised",
  [-10]: "the job's user has no valid uid/gid on the execution host",
  [-11]: "the job was requeued",
  [-13]: "the job's user's password was refused",
  [-15]: "the job was requeued for restart",
  [-16]: "a hook rejected the job (it is retried)",
  [-17]: "a hook rejected the job",
  [-19]: "a hook deleted the job",
  [-20]: "the connection to the job's mother superior failed",
  [-21]: "PBS found a security problem in its directories",
  [-22]: "a hook failed",
  [-23]: "no Kerberos credentials",
  [-24]: "the job used more CPUs than it asked for (burst)",
  [-25]: "the job used more CPUs than it asked for (sum)",
  [JOB_EXEC_KILL_VMEM]: "the job exceeded its vmem limit",
  [JOB_EXEC_KILL_MEM]: "the job exceeded its mem limit",
  [JOB_EXEC_KILL_CPUT]: "the job exceeded its cput limit",
  [JOB_EXEC_KILL_WALLTIME]: "the job exceeded its walltime",
  [-30]: "joining the job's sister nodes failed",
};
const SUBSTATE_TERMINATED = "91"; // F after pbs_deljob of a running or queued job

/** A finished job's (F or X) state and exit from Exit_status, substate and comment. */
type Finished = Pick<JobStatus, "state" | "exitCode" | "signal"> & { note: string | null };
function finished(exit: string | undefined, substate: string | undefined): Finished {
  const code = exit === undefined || exit === "" ? null : Number(exit);
  if (substate === SUBSTATE_TERMINATED) {
    // deleted (pbs_deljob): the script's end is the kill, whatever code it left
    const signal = code !== null && code > 256 ? code - 256 : code !== null && code > 128 ? code - 128 : null;
    return { state: "cancelled", exitCode: null, signal, note: null };
  }
  if (code === null || !Number.isInteger(code)) {
    // No Exit_status: the job never ran (deleted while queued).
    return { state: "failed", exitCode: null, signal: null, note: "the job ended without an exit status" };
  }
  if (code === 0) return { state: "completed", exitCode: 0, signal: null, note: null };
  if (code > 256) {
    const signal = code - 256; // PBS reports a script killed by signal s as 256 + s
    return { state: "failed", exitCode: null, signal, note: null };
  }
  if (code > 0) return { state: "failed", exitCode: code, signal: null, note: null };
  const note = EXEC_CODES[code] ?? `PBS ended the job with code ${code}`;
  const state: JobState =
    code === JOB_EXEC_KILL_WALLTIME || code === JOB_EXEC_KILL_CPUT
      ? "timeout"
      : code === JOB_EXEC_KILL_MEM || code === JOB_EXEC_KILL_VMEM
        ? "out_of_memory"
        : code === -20 || code === -3
          ? "node_fail"
          : "failed";
  return { state, exitCode: null, signal: null, note };
}

/** job_state letters: Q queued, H held, W waiting for its start time, T in transit, S/U suspended. */
const LIVE: Record<string, JobState> = {
  Q: "pending", H: "pending", W: "pending", T: "pending", M: "pending",
  R: "running", B: "running", S: "running", U: "running", E: "completing",
};

/** One pbs_statjob record → JobStatus. */
export function jobStatus(r: PbsJobRecord): JobStatus {
  const letter = get(r, "job_state") ?? "";
  const comment = get(r, "comment") ?? null;
  const base = {
    id: r.id,
    rawState: [letter, ...(get(r, "substate") ? [`substate ${get(r, "substate")}`] : [])],
    nodes: execNodes(get(r, "exec_host")),
    startTime: seconds(get(r, "stime")),
    endTime: null as number | null,
    timeLimitMinutes: walltimeMinutes(get(r, "Resource_List", "walltime")),
  };
  if (letter === "F" || letter === "X") {
    const f = finished(get(r, "Exit_status"), get(r, "substate"));
    const reason = [f.note, comment].filter(Boolean).join("; ") || null;
    const end = seconds(get(r, "obittime")) ?? seconds(get(r, "mtime"));
    return { ...base, state: f.state, reason, exitCode: f.exitCode, signal: f.signal, endTime: end };
  }
  const state = LIVE[letter] ?? "unknown";
  const reason = letter === "H" ? `held${comment ? `: ${comment}` : ""}` : comment;
  return { ...base, state, reason, exitCode: null, signal: null };
}

/** A job pbs_statjob does not know (finished with job history off, or never existed). */
export const goneJob = (id: string): JobStatus => ({
  id,
  state: "unknown",
  rawState: [],
  reason: "PBS no longer knows this job: it finished and the server keeps no job history " +
    "(qmgr: set server job_history_enable = True keeps finished jobs, with their exit status)",
  nodes: null,
  exitCode: null,
  signal: null,
  startTime: null,
  endTime: null,
});

/** The tag a job was submitted with (from its Variable_List), or null. */
export function jobTag(r: PbsJobRecord): string | null {
  const vars = get(r, "Variable_List");
  return vars ? (parseVariableList(vars)[TAG_VARIABLE] ?? null) : null;
}

/** Same job? PBS answers with "123.server" while callers may hold "123" or a different server suffix. */
export const sameJob = (a: string, b: string): boolean => a === b || a.split(".")[0] === b.split(".")[0];
