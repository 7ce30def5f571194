// Slurm through its command-line tools: squeue's and sacct's argv and the parsers of what sbatch,
// squeue and sacct print (Slurm 22.05's outputs in test/unit/slurm-cli-shapes.test.ts). Pure: no
// processes. sbatch's argv is slurm-cli-sbatch.ts; the runner is slurm-cli.ts.
import type { JobState, JobStatus, JsonObject } from "./scheduler.ts";
import { isTerminal, type SchedulerErrorKind } from "./scheduler.ts";
import {
  decodeWaitStatus,
  normaliseState,
  normaliseVersion,
  parseJobResponse,
  SUPPORTED_VERSIONS,
} from "./slurm-rest-shapes.ts";

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** `slurm-wlm 22.05.8` / `slurm 23.11.1` → [22, 5, 8]. */
export function parseSlurmVersion(text: string): { release: string; major: number; minor: number } | null {
  const m = /\bslurm(?:-wlm)?\s+((\d+)\.(\d+)(?:\.\d+)?\S*)/i.exec(text);
  return m ? { release: m[1]!, major: Number(m[2]), minor: Number(m[3]) } : null;
}

/**
 * squeue --json honours -j and -t only from 23.02 on: 22.05's dumps every job it knows (measured,
 * ~3.9 KB each), so 22.05 and unknown versions use a delimited --Format with the filters.
 */
export const squeueUsesJson = (v: { major: number; minor: number } | null): boolean =>
  v !== null && (v.major > 23 || (v.major === 23 && v.minor >= 2));

// Comment last: it is the only field that may hold the delimiter, so it takes the rest of the line.
const SQUEUE_FIELDS = "JobID:|,State:|,Reason:|,NodeList:|,TimeLimit:|,StartTime:|,EndTime:|,exit_code:|,Comment:";

/** One squeue for many jobs; times as unix seconds come from SLURM_TIME_FORMAT=%s in its environment. */
export function squeueArgs(ids: readonly string[], json: boolean): string[] {
  const filter = ["-t", "all", "-j", ids.join(",")];
  return json ? ["--json", ...filter] : ["-h", ...filter, "-O", SQUEUE_FIELDS];
}

/** squeue's answer when none of the ids exists any more (exit 1): not an error, just no jobs. */
export const noSuchJobs = (stderr: string): boolean => /Invalid job id specified/i.test(stderr);

const NULL_WORDS = new Set(["", "(null)", "None", "N/A"]);
const nullWord = (s: string | undefined): string | null => (s === undefined || NULL_WORDS.has(s) ? null : s);
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

interface Fields {
  reason?: string;
  nodes?: string;
  limit?: string;
  start?: string;
  end?: string;
}
type Exit = { exitCode: number | null; signal: number | null };
type Row8 = [string, string, string, string, string, string, string, string];

function status(id: string, words: string[], f: Fields, exit: Exit): JobStatus {
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
    const [id, state, reason, nodes, limit, start, end, raw] = f as Row8;
    const exit = /^\d+$/.test(raw) ? decodeWaitStatus(Number(raw)) : { exitCode: null, signal: null };
    const comment = nullWord(f.slice(8).join("|")) ?? "";
    out.push({ status: status(id, [state], { reason, nodes, limit, start, end }, exit), comment });
  }
  return out;
}

export const parseSqueueFormat = (text: string): Map<string, JobStatus> =>
  new Map(parseSqueueRows(text).map((r) => [r.status.id, r.status]));

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
export const sacctArgs = (ids: readonly string[], jobcomp = false): string[] =>
  [...(jobcomp ? ["-c"] : []), "-X", "-P", "-n", "-j", ids.join(","), "-o", SACCT_FIELDS];

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
    const [id, state, exit, reason, nodes, limit, start, end] = f as Row8;
    out.set(id, status(id, [state.split(" ")[0]!], { reason, nodes, limit, start, end }, parseExitPair(exit)));
  }
  return out;
}

/** A job neither squeue nor sacct knows: finished long ago, or never existed. */
export function forgottenJob(id: string, why: string): JobStatus {
  const state: JobState = "unknown";
  return { id, state, rawState: [], reason: why, nodes: null, exitCode: null, signal: null, startTime: null, endTime: null };
}

/** squeue listing of the caller's unfinished jobs with their comments, for findTagged. */
const UNFINISHED = "PENDING,RUNNING,SUSPENDED,COMPLETING,CONFIGURING,REQUEUED,RESIZING";
export const squeueTaggedArgs = (): string[] => ["-h", "--me", "-t", UNFINISHED, "-O", SQUEUE_FIELDS];

/** Ids of the unfinished jobs whose comment carries the tag. */
export function taggedIn(text: string, tag: string): string[] {
  return parseSqueueRows(text)
    .filter((r) => !isTerminal(r.status.state) && r.comment.split(/\s+/).includes(tag))
    .map((r) => r.status.id);
}

const NO_CONFIG = /Could not establish a configuration source|Unable to process configuration file|Can't open config file/i;
const UNREACHABLE =
  /Unable to contact slurm controller|Connection refused|Socket timed out|Unable to establish|Communication connection failure/i;
const AUTH = /authenticat|credential|Invalid user|Access\/permission denied|Zero Bytes were transmitted|munge/i;

/** What kind of failure a tool's stderr describes. */
export function classifyFailure(stderr: string): SchedulerErrorKind {
  // sbatch without a slurm.conf (and no configless DNS record): a setting to fix, not a dead cluster
  if (NO_CONFIG.test(stderr)) return "config";
  if (UNREACHABLE.test(stderr)) return "unreachable";
  if (AUTH.test(stderr)) return "auth";
  return "rejected";
}

/** The tool's error lines without its "sbatch: error: " prefixes. */
export const errorLines = (stderr: string): string[] =>
  stderr.split("\n").map((l) => l.replace(/^\s*\w+: (?:error|fatal): /, "").trim()).filter((l) => l !== "");
