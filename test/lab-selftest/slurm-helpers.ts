// Helpers of the Slurm lab self-test: process scans and REST calls.
import { expect } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { isAlive, waitUntil } from "../lab/proc.ts";
import type { SlurmLab } from "../lab/slurm.ts";

export const V = "v0.0.38"; // what Slurm 22.05 serves (the highest of lab.apiVersions there)

const DAEMON = /^(slurmctld|slurmd|slurmstepd|slurmrestd|munged|slurmscriptd)$/;
export function slurmProcesses(): Map<number, string> {
  const out = new Map<number, string>();
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const comm = fs.readFileSync(`/proc/${name}/comm`, "utf8").trim();
      const cmd = fs.readFileSync(`/proc/${name}/cmdline`, "latin1").replace(/\0/g, " ").trim();
      if ((DAEMON.test(comm) || /^(slurmstepd|: slurmscriptd)/.test(cmd)) && isAlive(Number(name))) out.set(Number(name), cmd);
    } catch {
      // gone
    }
  }
  return out;
}
/** processes holding a file open below dir */
export function holdersOf(dir: string): number[] {
  const found: number[] = [];
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      for (const fd of fs.readdirSync(`/proc/${name}/fd`)) {
        const target = fs.readlinkSync(`/proc/${name}/fd/${fd}`);
        if (target.startsWith(`${dir}/`) && isAlive(Number(name))) {
          found.push(Number(name));
          break;
        }
      }
    } catch {
      // gone or not ours to read
    }
  }
  return found;
}


export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};
export const show = (r: { code: number | null; stdout: string; stderr: string }): string =>
  `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

export function submitBody(l: SlurmLab, name: string, script: string): unknown {
  return {
    script,
    job: {
      name,
      partition: l.partition,
      current_working_directory: l.jobsDir,
      environment: { PATH: "/usr/local/bin:/usr/bin:/bin" },
      standard_output: path.join(l.jobsDir, `${name}-%j.out`),
      standard_error: path.join(l.jobsDir, `${name}-%j.err`),
      cpus_per_task: 1,
      memory_per_node: 64,
      time_limit: 5,
    },
  };
}

export async function restSubmit(l: SlurmLab, name: string, script: string): Promise<number> {
  const r = await l.rest("POST", `/slurm/${V}/job/submit`, { body: submitBody(l, name, script) });
  expect(r.status, r.text).toBe(200);
  expect(r.json.errors).toEqual([]);
  expect(typeof r.json.job_id).toBe("number");
  return r.json.job_id as number;
}

export async function restState(l: SlurmLab, id: number): Promise<{ state: string; exit: number; job: Record<string, unknown> }> {
  const r = await l.rest("GET", `/slurm/${V}/job/${id}`);
  expect(r.status, r.text).toBe(200);
  const job = r.json.jobs[0] as Record<string, unknown>;
  return { state: String(job.job_state), exit: Number(job.exit_code), job };
}

export async function restWait(l: SlurmLab, id: number, states: string[], timeoutMs = 30_000): Promise<string[]> {
  const seen: string[] = [];
  await waitUntil(
    async () => {
      const { state } = await restState(l, id);
      if (seen[seen.length - 1] !== state) seen.push(state);
      return states.includes(state);
    },
    timeoutMs,
    20,
  );
  return seen;
}

