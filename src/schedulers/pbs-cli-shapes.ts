// OpenPBS through its command-line tools: qsub's argv and environment, and the parsers of what qsub,
// qstat and qdel print (OpenPBS 23.06's outputs in test/unit/pbs-cli-shapes.test.ts). Pure: no
// processes. The runner is pbs-cli.ts.
import type { JobSpec, JobState, JobStatus } from "./scheduler.ts";
import { SchedulerError, type SchedulerErrorKind } from "./scheduler.ts";

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** The job environment variable that carries JobSpec.tag: qstat -f shows it in Variable_List. */
export const TAG_VARIABLE = "NSH_JOB_TAG";

/** A PBS job id: SEQ[.SERVER] or an array's SEQ[].SERVER; never something qstat could read as an option. */
export const isPbsJobId = (id: string): boolean => /^\d+(\[\d*\])?(\.[A-Za-z0-9][A-Za-z0-9.-]*)?$/.test(id);

/** pbs.conf's KEY=VALUE lines. */
export function parsePbsConf(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^\s*([A-Z_][A-Z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

/** Slurm's torque wrappers (slurm-wlm-torque) are scripts naming Slurm; PBS's own qsub is a binary. */
export const isSlurmWrapper = (head: string): boolean => head.startsWith("#!") && /slurm/i.test(head);

/** minutes → PBS's walltime HH:MM:SS. */
export function walltime(minutes: number): string {
  if (!Number.isSafeInteger(minutes) || minutes <= 0) {
    throw new SchedulerError("config", `time limit ${minutes} min: expected a positive whole number of minutes`);
  }
  const two = (n: number): string => String(n).padStart(2, "0");
  return `${two(Math.floor(minutes / 60))}:${two(minutes % 60)}:00`;
}

/** "HH:MM:SS", "MM:SS" or seconds → minutes (rounded up); null when not a duration. */
export function parseWalltime(text: unknown): number | null {
  const t = String(text ?? "").trim();
  const m = /^(?:(?:(\d+):)?(\d+):)?(\d+)$/.exec(t);
  if (!m) return null;
  const secs = Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3]);
  return Math.ceil(secs / 60);
}

export interface QsubCall {
  /** the arguments after qsub itself; the script goes to its stdin */
  args: string[];
  /** qsub's whole environment, which becomes the job's (-V); values never go into argv */
  env: Record<string, string>;
  /** the script as qsub reads it: a line that enters the working directory after the #! line */
  script: string;
}

/**
 * qsub's argv and environment for a job. `-V` exports qsub's whole environment to the job, so qsub
 * runs with exactly the job's environment (plus `toolEnv`, what qsub needs to find its server):
 * `-v VAR=value` would put the values in argv, world-readable in /proc/PID/cmdline. `-f` keeps
 * qsub in the foreground (no background qsub daemon left behind). resources: pbsResources, a JSON
 * object of strings, each one `-l KEY=VALUE`, over the walltime from timeLimitMinutes.
 */
export function buildQsub(
  spec: JobSpec,
  o: { server?: string; toolEnv?: Record<string, string> } = {},
): QsubCall {
  const resources: Record<string, string> = {};
  if (spec.timeLimitMinutes !== undefined) resources.walltime = walltime(spec.timeLimitMinutes);
  for (const [key, value] of Object.entries(spec.extra ?? {})) {
    if (typeof value !== "string") {
      const what = `pbsResources '${key}': expected a string, got ${JSON.stringify(value)}; nothing was submitted`;
      throw new SchedulerError("config", what);
    }
    if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(key)) {
      throw new SchedulerError("config", `pbsResources key '${key}' is not a PBS resource name; nothing was submitted`);
    }
    // a comma would start another resource inside one -l (walltime=1,ncpus=99); quotes are qsub's syntax
    if (value === "" || /[,"'\s\\]/.test(value) || /[\0-\x1f]/.test(value)) {
      const what = `pbsResources '${key}': ${JSON.stringify(value)} must be non-empty, without commas, quotes or spaces`;
      throw new SchedulerError("config", `${what}; nothing submitted`);
    }
    resources[key] = value;
  }
  if (/[\0\n]/.test(spec.name) || spec.name === "") {
    throw new SchedulerError("config", `bad job name ${JSON.stringify(spec.name)}`);
  }
  const args = ["-f", "-V", "-N", spec.name];
  if (o.server) args.push("-q", `@${o.server}`);
  for (const [key, value] of Object.entries(resources)) args.push("-l", `${key}=${value}`);
  if (spec.stdout !== undefined) args.push("-o", spec.stdout);
  if (spec.stderr !== undefined) args.push("-e", spec.stderr);
  // qsub reads these from its own environment as its settings: they would change the submission
  const steering = Object.keys(spec.environment).filter((k) => k.startsWith("PBS_") || k === TAG_VARIABLE);
  if (steering.length > 0) {
    const what = `job environment sets ${steering.join(", ")}, which qsub reads as its own settings`;
    throw new SchedulerError("config", `${what}; nothing was submitted`);
  }
  const env = { ...spec.environment, ...(spec.tag ? { [TAG_VARIABLE]: spec.tag } : {}), ...o.toolEnv };
  return { args, env, script: withWorkdir(spec.script, spec.workingDirectory) };
}

/** PBS starts a job in the user's home: the script enters the working directory itself. */
function withWorkdir(script: string, dir: string): string {
  const cd = `cd '${dir.replaceAll("'", "'\\''")}' || exit 1\n`;
  if (!script.startsWith("#!")) return cd + script;
  const nl = script.indexOf("\n");
  return nl < 0 ? `${script}\n${cd}` : script.slice(0, nl + 1) + cd + script.slice(nl + 1);
}

/** qsub's output: the job id on the last line. */
export function parseQsubOutput(stdout: string): string | null {
  const last = stdout.trim().split("\n").pop()?.trim() ?? "";
  return isPbsJobId(last) ? last : null;
}

/**
 * One qstat for many jobs, finished ones included (-x). DSV with the unit separator as delimiter,
 * not JSON: OpenPBS 23.06's `qstat -f -F json A B` prints only A (its JSON "Jobs" object is made
 * for the first operand only); DSV prints every operand's job, one record each.
 */
export const DSV_DELIMITER = "\x1f";
export const qstatManyArgs = (ids: readonly string[]): string[] =>
  ["-x", "-f", "-F", "dsv", "-D", DSV_DELIMITER, ...ids];
/** The unfinished jobs the user may see, in one batch status: JSON is whole here. */
export const qstatTaggedArgs = (server?: string): string[] => ["-f", "-F", "json", ...(server ? [`@${server}`] : [])];
export const qstatServerArgs = (server?: string): string[] => ["-B", "-f", "-F", "json", ...(server ? [server] : [])];

type Attrs = Record<string, string>;

/** `qstat -f -F json` → each job's attributes, nested objects flattened to "Resource_List.walltime". */
export function parseQstatJson(json: unknown): Map<string, Attrs> {
  const jobs = isObj(json) && isObj(json.Jobs) ? json.Jobs : {};
  const out = new Map<string, Attrs>();
  for (const [id, job] of Object.entries(jobs)) {
    if (!isObj(job)) continue;
    const attrs: Attrs = {};
    for (const [k, v] of Object.entries(job)) {
      if (isObj(v)) for (const [r, rv] of Object.entries(v)) attrs[`${k}.${r}`] = String(rv);
      else attrs[k] = String(v);
    }
    out.set(id, attrs);
  }
  return out;
}

/** `qstat -f -F dsv -D DELIM` → each job's attributes; an escaped delimiter (\DELIM) stays in its value. */
export function parseQstatDsv(text: string, delimiter = DSV_DELIMITER): Map<string, Attrs> {
  const out = new Map<string, Attrs>();
  for (const record of text.split(/^Job Id: /m).slice(1)) {
    const fields: string[] = [];
    let cur = "";
    for (let i = 0; i < record.length; i++) {
      if (record[i] === "\\" && record.startsWith(delimiter, i + 1)) {
        cur += delimiter;
        i += delimiter.length;
      } else if (record.startsWith(delimiter, i)) {
        fields.push(cur);
        cur = "";
        i += delimiter.length - 1;
      } else cur += record[i];
    }
    fields.push(cur.replace(/\n$/, ""));
    const id = fields.shift()!.trim();
    const attrs: Attrs = {};
    for (const f of fields) {
      const eq = f.indexOf("=");
      if (eq > 0) attrs[f.slice(0, eq)] = f.slice(eq + 1);
    }
    out.set(id, attrs);
  }
  return out;
}

/** ctime()-style times as qstat prints them, in the tools' TZ=UTC → unix seconds. */
export function parsePbsTime(text: string | undefined): number | null {
  const m = /^\w{3} (\w{3}) +(\d+) (\d\d):(\d\d):(\d\d) (\d{4})$/.exec(text?.trim() ?? "");
  if (!m) return null;
  const month = "JanFebMarAprMayJunJulAugSepOctNovDec".indexOf(m[1]!) / 3;
  if (month < 0) return null;
  return Date.UTC(Number(m[6]), month, Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5])) / 1000;
}

/** exec_host "n1/0*2+n2/1" → "n1,n2". */
export function execHosts(text: string | undefined): string | null {
  if (!text) return null;
  const hosts = [...new Set(text.split("+").map((h) => h.split("/")[0]!.trim()).filter(Boolean))];
  return hosts.length > 0 ? hosts.join(",") : null;
}

const SUBSTATE_TERMINATED = "91"; // deleted (qdel) before or while it ran

/** Negative Exit_status: PBS's JOB_EXEC_* codes (src/include/job.h) that are more than "failed". */
const EXEC_CODES: Record<number, { state: JobState; why: string }> = {
  [-29]: { state: "timeout", why: "walltime exceeded" },
  [-27]: { state: "out_of_memory", why: "mem exceeded" },
  [-26]: { state: "out_of_memory", why: "vmem exceeded" },
  [-20]: { state: "node_fail", why: "lost contact with the job's first node" },
  [-10]: { state: "failed", why: "invalid uid/gid for the job on its node" },
};

const PENDING_WHY: Record<string, string> = {
  Q: "queued",
  H: "held",
  W: "waiting for its execution time",
  T: "in transit to its queue",
  S: "suspended",
  U: "suspended (workstation busy)",
};

/** One job's qstat attributes → nsh's status. */
export function statusOf(id: string, a: Attrs): JobStatus {
  const raw = a.job_state ?? "";
  const exitText = a.Exit_status;
  const exit = exitText !== undefined && /^-?\d+$/.test(exitText) ? Number(exitText) : null;
  let state: JobState;
  let exitCode: number | null = null;
  let signal: number | null = null;
  let why: string | null = a.comment ?? null;
  if (raw === "F" || raw === "X") {
    if (a.substate === SUBSTATE_TERMINATED) state = "cancelled";
    else if (exit === null) state = "cancelled"; // finished without running
    else if (exit > 256) [state, signal] = ["failed", exit - 256];
    else if (exit >= 0) [state, exitCode] = [exit === 0 ? "completed" : "failed", exit];
    else {
      const known = EXEC_CODES[exit];
      state = known?.state ?? "failed";
      why = `${known?.why ?? "PBS could not run the job"} (Exit_status ${exit})${why ? `: ${why}` : ""}`;
    }
  } else if (raw === "R" || raw === "B") state = "running";
  else if (raw === "E") state = "completing";
  else if (raw in PENDING_WHY) {
    state = "pending";
    why ??= PENDING_WHY[raw]!;
  } else state = "unknown";
  const finished = state !== "pending" && state !== "running" && state !== "unknown";
  const limit = a["Resource_List.walltime"];
  return {
    id,
    state,
    rawState: a.substate ? [raw, a.substate] : [raw],
    reason: why,
    nodes: execHosts(a.exec_host),
    exitCode,
    signal,
    startTime: state === "pending" ? null : parsePbsTime(a.stime),
    endTime: finished ? parsePbsTime(a.obittime ?? a.mtime) : null,
    timeLimitMinutes: limit === undefined ? null : parseWalltime(limit),
  };
}

/** The job of `wanted` that a qstat record names: the same id, or the same sequence number and server prefix. */
export function matchId(wanted: string, found: Iterable<string>): string | undefined {
  const all = [...found];
  if (all.includes(wanted)) return wanted;
  const [seq, ...rest] = wanted.split(".");
  const host = rest.join(".");
  return all.find((f) => {
    const [fs, ...fr] = f.split(".");
    const fh = fr.join(".");
    return fs === seq && (host === "" || fh === "" || fh.startsWith(host) || host.startsWith(fh));
  });
}

/** The ids a tool's stderr says the server does not know ("Unknown Job Id X"). */
export const unknownIds = (stderr: string): string[] =>
  [...stderr.matchAll(/Unknown Job Id (\S+)/g)].map((m) => m[1]!);

/** A job neither in qstat's output nor its history: finished long ago, or never existed. */
export function unknownJob(id: string, why: string): JobStatus {
  return { id, state: "unknown", rawState: [], reason: why, nodes: null, exitCode: null, signal: null,
    startTime: null, endTime: null };
}

/** qdel's complaints that mean "already over": not an error for a cancel. */
export const qdelHarmless = (line: string): boolean =>
  /Job has finished|Unknown Job Id|Request invalid for state of job|job is in exiting state/i.test(line);

/** Ids of the unfinished jobs whose Variable_List carries the tag. */
export function taggedIn(jobs: Map<string, Attrs>, tag: string): string[] {
  return [...jobs].filter(([id, a]) => {
    const st = statusOf(id, a).state;
    return (st === "pending" || st === "running") && a[`Variable_List.${TAG_VARIABLE}`] === tag;
  }).map(([id]) => id);
}

/** `qstat -B -f -F json` → the server's name and version, or null. */
export function parseServerStatus(json: unknown): { server: string; version: string } | null {
  if (!isObj(json) || typeof json.pbs_version !== "string") return null;
  return { server: String(json.pbs_server ?? "?"), version: json.pbs_version };
}

const UNREACHABLE =
  /cannot connect to server|Connection refused|No route to host|timed out|pbs_connect|Name or service not known/i;
const AUTH =
  /Bad UID for job execution|Unauthorized Request|authenticat|munge|not authorized|Access from host not allowed/i;
const CONFIG = /Unable to read configuration|cannot find pbs\.conf|pbs_conf|PBS_CONF_FILE/i;

/** What kind of failure a tool's stderr describes. */
export function classifyFailure(stderr: string): SchedulerErrorKind {
  if (CONFIG.test(stderr)) return "config";
  if (UNREACHABLE.test(stderr)) return "unreachable";
  if (AUTH.test(stderr)) return "auth";
  return "rejected";
}

/** The tool's error lines without their "qsub: " prefixes. */
export const errorLines = (stderr: string): string[] =>
  stderr.split("\n").map((l) => l.replace(/^\s*q(?:sub|stat|del): /, "").trim()).filter((l) => l !== "");
