// slurm-native's pure parts: a derivation's slurmNativeConstraints checked and turned into the
// shim's numbers, the shim's job lines turned into JobStatus, and the environment packed for C.
// States, reasons and exit statuses mean what they mean in the REST backend (same Slurm words).
import { isTerminal, type JobStatus, type JsonObject } from "./scheduler.ts";
import { decodeWaitStatus, normaliseState } from "./slurm-rest-shapes.ts";

export interface NativeConstraints {
  cpus?: number;
  memPerNodeMb?: number;
  memPerCpuMb?: number;
}

export const CONSTRAINT_KEYS = ["cpus", "memPerNode", "memPerCPU"] as const;
const UNIT_MB: Record<string, number> = { K: 1 / 1024, M: 1, G: 1024, T: 1024 * 1024 };

/** A memory amount in MB: a positive integer (MB, as sbatch --mem) or text such as "512M", "8G". */
function megabytes(value: unknown): number | null {
  if (typeof value === "number") return Number.isSafeInteger(value) && value > 0 ? value : null;
  if (typeof value !== "string") return null;
  const m = /^\s*(\d+)\s*([KMGT])?B?\s*$/i.exec(value);
  if (!m) return null;
  const mb = Math.ceil(Number(m[1]) * UNIT_MB[(m[2] ?? "M").toUpperCase()]!);
  return mb > 0 ? mb : null;
}

export type ConstraintsResult = { ok: true; value: NativeConstraints } | { ok: false; error: string };

/** slurmNativeConstraints (JobSpec.extra) → the shim's numbers; every error says what to write. */
export function parseConstraints(extra: JsonObject | undefined): ConstraintsResult {
  const c = extra ?? {};
  const fail = (error: string): ConstraintsResult => ({
    ok: false,
    error: `slurmNativeConstraints: ${error}; nothing was submitted`,
  });
  const unknown = Object.keys(c).filter((k) => !(CONSTRAINT_KEYS as readonly string[]).includes(k));
  if (unknown.length > 0) return fail(`slurm-native knows ${CONSTRAINT_KEYS.join(", ")}, not ${unknown.join(", ")}`);
  if (c.memPerNode !== undefined && c.memPerCPU !== undefined) {
    return fail(
      "memPerNode and memPerCPU are mutually exclusive (Slurm takes memory per node or per CPU, " +
        "as sbatch --mem or --mem-per-cpu); give one",
    );
  }
  const out: NativeConstraints = {};
  if (c.cpus !== undefined) {
    if (typeof c.cpus !== "number" || !Number.isSafeInteger(c.cpus) || c.cpus < 1 || c.cpus > 65535) {
      return fail(`cpus must be a whole number from 1 to 65535, got ${JSON.stringify(c.cpus)}`);
    }
    out.cpus = c.cpus;
  }
  for (const [key, field] of [["memPerNode", "memPerNodeMb"], ["memPerCPU", "memPerCpuMb"]] as const) {
    if (c[key] === undefined) continue;
    const mb = megabytes(c[key]);
    const got = JSON.stringify(c[key]);
    if (mb === null) return fail(`${key} must be megabytes (a positive whole number) or a size such as "512M" or "8G", got ${got}`);
    out[field] = mb;
  }
  return { ok: true, value: out };
}

/** The shim's numbers array: time limit, cpus, memory per node, memory per CPU (0: Slurm's default). */
export const submitNumbers = (timeLimitMinutes: number | undefined, c: NativeConstraints): BigInt64Array =>
  BigInt64Array.from(
    [timeLimitMinutes ?? 0, c.cpus ?? 0, c.memPerNodeMb ?? 0, c.memPerCpuMb ?? 0].map((n) => BigInt(Math.trunc(n))),
  );

// Slurm refuses a batch job without any environment (ESLURM_ENVIRONMENT_MISSING).
const FALLBACK_ENV = { PATH: "/usr/local/bin:/usr/bin:/bin" };

/** "K=V" strings one after another, each NUL-terminated, and how many there are. */
export function packEnvironment(env: Record<string, string>): { buf: Buffer; count: number } {
  const given = Object.keys(env).length > 0 ? env : FALLBACK_ENV;
  const entries = Object.entries(given).filter(([k]) => k !== "" && !k.includes("=") && !k.includes("\0"));
  const text = entries.map(([k, v]) => `${k}=${v.replaceAll("\0", "")}\0`).join("");
  return { buf: Buffer.from(text, "utf8"), count: entries.length };
}

/** The tag goes into the job's comment (one word; the REST backend's findTagged reads it alike). */
export const commentWords = (comment: string): string[] => comment.split(/\s+/).filter((w) => w !== "");

export interface NativeJob {
  status: JobStatus;
  comment: string;
}

/** nsh_shim_jobs's text: id, states, reason, nodes, raw exit, start, end, time limit, comment. */
export function parseJobLines(text: string): NativeJob[] {
  const jobs: NativeJob[] = [];
  for (const line of text.split("\n")) {
    const f = line.split("\t");
    if (f.length < 9 || !/^\d+$/.test(f[0]!)) continue;
    const [id, states, reason, nodes, exitRaw, start, end, limit] = f as string[] as [string, string, string, string, string, string, string, string];
    const words = states.split(",").filter((w) => w !== "");
    const state = normaliseState(words);
    const finished = isTerminal(state) || state === "completing";
    const exit = finished ? decodeWaitStatus(Number(exitRaw)) : { exitCode: null, signal: null };
    const time = (s: string): number | null => (Number(s) > 0 ? Number(s) : null);
    const limitMin = Number(limit);
    jobs.push({
      comment: f.slice(8).join(" "),
      status: {
        id,
        state,
        rawState: words,
        reason: reason !== "" && reason !== "None" ? reason : null,
        nodes: nodes !== "" && nodes !== "(null)" ? nodes : null,
        exitCode: exit.exitCode,
        signal: exit.signal,
        // Before the end Slurm reports estimates (expected start, start + time limit): not times.
        startTime: state === "pending" ? null : time(start),
        endTime: finished ? time(end) : null,
        timeLimitMinutes: limitMin > 0 ? limitMin : null,
      },
    });
  }
  return jobs;
}

/** The status of a job Slurm no longer (or never) knew: finished jobs vanish after MinJobAge. */
export const forgottenJob = (id: string): JobStatus => ({
  id,
  state: "unknown",
  rawState: [],
  reason: `slurmctld does not know job ${id}`,
  nodes: null,
  exitCode: null,
  signal: null,
  startTime: null,
  endTime: null,
});

/** Job ids as the shim takes them; an id that is not a Slurm job number is refused by name. */
export function numericIds(ids: string[]): { ok: true; ids: Uint32Array } | { ok: false; error: string } {
  const bad = ids.filter((id) => !/^\d+$/.test(id) || Number(id) < 1 || Number(id) > 0xfffffffd);
  if (bad.length > 0) return { ok: false, error: `not Slurm job ids: ${bad.join(", ")}` };
  return { ok: true, ids: Uint32Array.from(ids.map(Number)) };
}

/** What kind of failure a Slurm errno is (slurm_errno.h), for SchedulerError. */
export function errnoKind(e: number): "unreachable" | "auth" | "version" | "rejected" {
  if ((e >= 1001 && e <= 1004) || (e >= 1800 && e < 1900) || (e >= 5000 && e < 5100)) return "unreachable";
  if (e === 1007 || (e >= 6000 && e < 6100)) return "auth";
  if (e === 1005) return "version";
  return "rejected";
}
