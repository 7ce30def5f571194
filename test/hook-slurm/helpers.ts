// Shared by the test/hook-slurm files: job records from `nsh jobs`, Slurm's view of a job, and
// waiting for conditions.
import fs from "node:fs";
import path from "node:path";
import type { ClusterLab } from "../lab/cluster.ts";
import { NSH_BIN } from "../lab/cluster.ts";

export const salt = () => `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

export interface JobRec {
  key: string;
  drv: string;
  jobId?: string;
  node?: string;
  state: string;
  message?: string;
  hookPid: number;
  phases: Record<string, number>;
  /** epoch ms of the build's steps (uploaded, built, …) */
  marks?: Record<string, number>;
}

/** `nsh jobs --all --json` as the hook's user sees it (same nsh.conf, same state dir). */
export function nshJobs(lab: ClusterLab): JobRec[] {
  const r = spawnNsh(["jobs", "--all", "--json"], { ...lab.nix.env, NSH_CONF: lab.nshConf });
  return r.stdout
    .toString()
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as JobRec);
}

/**
 * Where the user would run nsh: inside the lab's Debian root when it runs one (NSH_LAB_SUITE=trixie|sid;
 * its wrappers' directory, with `.enter`, is first on the lab's PATH), so `nsh doctor`, `jobs` and
 * `cancel` meet that release's Nix and Slurm tools, not the host's.
 */
export function nshArgv(args: string[], env: Record<string, string>): string[] {
  const enter = path.join((env.PATH ?? "").split(":")[0] ?? "", ".enter");
  return [...(env.PATH && fs.existsSync(enter) ? [enter] : []), NSH_BIN, ...args];
}

/** Runs dist/nsh (nshArgv); a rebuild of it under way (ETXTBSY) is waited out. */
export function spawnNsh(args: string[], env: Record<string, string>) {
  for (let i = 0; ; i++) {
    try {
      return Bun.spawnSync(nshArgv(args, env), { env });
    } catch (e) {
      if ((e as { code?: string }).code !== "ETXTBSY" || i > 50) throw e;
      Bun.sleepSync(100);
    }
  }
}

/** The records of the derivations whose name contains `s` (a test's salt). */
export const jobsOf = (lab: ClusterLab, s: string) => nshJobs(lab).filter((j) => j.drv.includes(s));

/** `scontrol show job -o <id>` as KEY → VALUE (one line; values never contain spaces here). */
export async function showJob(lab: ClusterLab, id: string): Promise<Record<string, string>> {
  const r = await lab.slurm.run(["scontrol", "-o", "show", "job", id]);
  const out: Record<string, string> = {};
  for (const word of r.stdout.trim().split(/\s+/)) {
    const eq = word.indexOf("=");
    if (eq > 0) out[word.slice(0, eq)] = word.slice(eq + 1);
  }
  return out;
}

/** Job ids Slurm still has queued or running (squeue's default states), with their state. */
export async function squeue(lab: ClusterLab): Promise<Map<string, string>> {
  const r = await lab.slurm.run(["squeue", "-h", "-o", "%i %T"]);
  return new Map(
    r.stdout
      .trim()
      .split("\n")
      .filter(Boolean)
      .map((l) => l.trim().split(/\s+/) as [string, string]),
  );
}

export async function jobState(lab: ClusterLab, id: string): Promise<string> {
  const r = await lab.slurm.run(["squeue", "-h", "-t", "all", "-j", id, "-o", "%T"]);
  return r.stdout.trim();
}

/** Polls `check` every `everyMs` until it returns a value (not undefined) or `timeoutMs` passes. */
export async function until<T>(check: () => Promise<T | undefined> | T | undefined, timeoutMs: number, everyMs = 100): Promise<T | undefined> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) return undefined;
    await Bun.sleep(everyMs);
  }
}

/** nsh's own messages must read as messages: no JavaScript stack frames. */
export const hasStackTrace = (text: string) => /^\s+at .+(\(|:\d+:\d+)/m.test(text) || /\bat <anonymous>|\$bunfs\//.test(text);

/** nsh.conf as the lab writes it, with some settings' values replaced (or added) instead of repeated. */
export function confWith(lab: ClusterLab, values: Record<string, string>): void {
  lab.writeConf();
  const lines = fs.readFileSync(lab.nshConf, "utf8").split("\n");
  const left = new Map(Object.entries(values));
  const out = lines.map((l) => {
    const k = l.split("=")[0]!.trim();
    if (!left.has(k)) return l;
    const v = left.get(k)!;
    left.delete(k);
    return `${k} = ${v}`;
  });
  for (const [k, v] of left) out.push(`${k} = ${v}`);
  fs.writeFileSync(lab.nshConf, `${out.join("\n")}\n`);
}

/** The id of the job nsh submitted for the build salted `s`, once Slurm shows it in `state`. */
export function jobInState(lab: ClusterLab, s: string, state: string, timeoutMs = 30000): Promise<string | undefined> {
  return until(async () => {
    const rec = jobsOf(lab, s)[0];
    return rec?.jobId && (await jobState(lab, rec.jobId)) === state ? rec.jobId : undefined;
  }, timeoutMs);
}

/** Slurm's state for job `id` once it has ended (or "" once Slurm forgot it), polled every 50 ms; undefined after `timeoutMs`. */
export function jobEnded(lab: ClusterLab, id: string, timeoutMs = 10000): Promise<string | undefined> {
  return until(async () => {
    const st = await jobState(lab, id);
    return st === "" || st === "CANCELLED" || st === "COMPLETED" || st === "FAILED" ? st : undefined;
  }, timeoutMs, 50);
}

/** Pairs of builds of one job whose build windows (uploaded → built, from their records) overlap in time. */
export function overlappingInJob(recs: readonly Pick<JobRec, "jobId" | "marks">[]): number {
  let pairs = 0;
  for (const [i, a] of recs.entries()) {
    for (const b of recs.slice(i + 1)) {
      const [a0, a1, b0, b1] = [a.marks?.uploaded, a.marks?.built, b.marks?.uploaded, b.marks?.built];
      if (a.jobId !== b.jobId || !a0 || !a1 || !b0 || !b1) continue;
      if (a0 < b1 && b0 < a1) pairs++;
    }
  }
  return pairs;
}
