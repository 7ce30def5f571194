// The build cases of the hook benchmark (bench/hook.ts): (a) one derivation, (b) 50 + aggregate,
// (b2) 200 + aggregate, each variant (nsh, pilot, br, local) in rotated order with fresh salts after
// a warm-up round, plus Slurm alone (sbatch jobs that stamp their start) every round. nsh.conf is
// rewritten before every nsh and pilot run (pilot: NSH_BENCH_PILOT's lines); before every run of any
// variant the lab's Slurm jobs still queued (pilots left idle) are cancelled and nsh's state forgets
// its pilots, so no run feeds the next. The counted (b)/(b2) runs are probed (bench/hook-probe-run.ts).
import fs from "node:fs";
import path from "node:path";
import type { ClusterLab } from "../test/lab/cluster.ts";
import { DB_FILE, openStateDb } from "../src/state/db.ts";
import { dropPilot, listPilots } from "../src/state/pilots.ts";
import { load1 } from "./proc.ts";
import { withOverrides } from "./schedulers-calls.ts";
import { rotate } from "./schedulers-report.ts";
import type { ProbeRun } from "./hook-wide.ts";
import { startProbe, startRequestLog } from "./hook-probe-run.ts";
import { isNsh, LABEL, type BuildRun, type CaseId, type Variant } from "./hook-report.ts";
import { EXPR, max, onCleanup, salt, tail, timed } from "./lib.ts";

const WORKLOAD = path.join(EXPR, "hook.nix");

/** ms: before the submits → the last job's script ran (`wide`: a wave of n, then one more); each: per job */
export type SlurmRef = { caseId: CaseId; round: number; ms: number; each: number[] };
export type JobRec = {
  drv: string; state: string; phases: Record<string, number>; jobId?: string; submittedAt: number;
};

export interface BuildCasesOptions {
  lab: ClusterLab;
  nsh: string;
  cases: readonly CaseId[];
  variants: readonly Variant[];
  /** nsh.conf lines added for the pilot variant */
  pilotConf: string;
  widthOf(c: CaseId): number;
  jobsOf(c: CaseId): number;
  roundsOf(c: CaseId): number;
  lineFor(maxJobs: number): string;
  timeoutMs: number;
}

export interface BuildCasesResult {
  builds: BuildRun[];
  refs: SlurmRef[];
  probes: ProbeRun[];
  /** nsh's job records (`nsh jobs --all --json`) after all runs */
  records: JobRec[];
}

/** The records of the derivations salted `s` (every derivation's name ends in -<salt>). */
export const recordsOf = (records: readonly JobRec[], s: string): JobRec[] =>
  records.filter((j) => j.drv.includes(`-${s}.drv`));

/** `nsh jobs --json` output; a line that does not parse is reported and skipped, not the end of a 15-minute run. */
export function parseJobLines(out: string, exitCode: number | null): JobRec[] {
  const lines = out.split("\n").filter((l) => l.trim());
  const records: JobRec[] = [];
  for (const [i, l] of lines.entries()) {
    try {
      records.push(JSON.parse(l) as JobRec);
    } catch (e) {
      const where = `nsh jobs --json (exit ${exitCode}), line ${i + 1} of ${lines.length}`;
      process.stderr.write(`${where} skipped: ${e}: ${l.slice(0, 200)}\n`);
    }
  }
  return records;
}

export async function runBuildCases(o: BuildCasesOptions): Promise<BuildCasesResult> {
  const { lab, nsh, widthOf, jobsOf, timeoutMs } = o;
  const env = lab.nix.env;
  const baseConf = fs.readFileSync(lab.nshConf, "utf8");
  const requests = startRequestLog(lab.slurm.restUrl);
  onCleanup(() => requests.stop());

  const buildArgv = (v: Variant, c: CaseId, s: string): string[] => {
    const [n, j] = [widthOf(c), String(jobsOf(c))];
    const base = ["nix-build", "--store", "daemon", "--no-out-link", WORKLOAD, "-A", c === "one" ? "one" : "all",
      "--argstr", "salt", s, "--arg", "n", String(n)];
    if (isNsh(v)) return [...base, "--option", "build-hook", nsh, "-j", j];
    if (v === "br") return [...base, "--max-jobs", "0", "--builders", o.lineFor(jobsOf(c))];
    return [...base, "--argstr", "feature", "", "--builders", "", "-j", j];
  };
  const expected = (c: CaseId, s: string) => (c === "one" ? `one ${s}` : String((widthOf(c) * (widthOf(c) - 1)) / 2));
  // From (b) on nsh reaches slurmrestd through the counting proxy; pilot adds NSH_BENCH_PILOT's lines.
  const writeConf = (c: CaseId, v: Variant) => {
    const extra = [c === "one" ? "" : `slurm-api-port = ${requests.port}`, v === "pilot" ? o.pilotConf : ""].join("\n");
    fs.writeFileSync(lab.nshConf, withOverrides(baseConf, extra));
  };

  // Pilots stay idle up to pilot-idle-time after a run: cancel every job of the (private) lab Slurm,
  // make nsh's state forget its pilots, and wait until Slurm shows no job, so each run starts clean.
  const queued = async () => {
    const r = await lab.slurm.run(["squeue", "-h", "-o", "%i"], { timeoutMs: 30_000 });
    return r.stdout.split("\n").map((s) => s.trim()).filter(Boolean);
  };
  const stateDir = /^state-dir\s*=\s*(.+)$/m.exec(baseConf)?.[1]?.trim() || path.join(lab.nix.root, "nsh-state");
  const endLabJobs = async (): Promise<number> => {
    const ids = await queued();
    if (fs.existsSync(path.join(stateDir, DB_FILE))) {
      const db = openStateDb(stateDir);
      try {
        for (const p of await listPilots(db)) await dropPilot(db, p.slot);
      } finally {
        db.close();
      }
    }
    if (!ids.length) return 0;
    await lab.slurm.run(["scancel", ...ids], { timeoutMs: 30_000 });
    const deadline = Date.now() + 120_000;
    while ((await queued()).length) {
      if (Date.now() > deadline) {
        throw new Error(`the lab's Slurm still shows jobs 120 s after scancel ${ids.join(" ")}`);
      }
      await Bun.sleep(250);
    }
    return ids.length;
  };

  const runBuild = async (c: CaseId, v: Variant, round: number, of: number): Promise<BuildRun> => {
    const cancelledBefore = await endLabJobs();
    if (isNsh(v)) writeConf(c, v);
    const s = salt();
    const load = load1();
    const firstRequest = requests.log.length;
    const r = await timed(buildArgv(v, c, s), env, { timeoutMs });
    const submits = requests.log.slice(firstRequest).filter((x) => x.kind === "submit").length;
    let why: string | undefined = r.timedOut
      ? `timed out after ${timeoutMs / 1000} s`
      : r.code !== 0 ? `exit ${r.code ?? r.signal}` : undefined;
    const out = r.stdout.trim().split("\n").at(-1) ?? "";
    const got = why || !fs.existsSync(out) ? "" : fs.readFileSync(out, "utf8").trim();
    if (!why && got !== expected(c, s)) {
      why = `exit 0, but ${out || "no output path"} holds '${got}', not '${expected(c, s)}'`;
    }
    const run: BuildRun = {
      caseId: c, variant: v, round, salt: s, ms: r.ms, ok: !why, why, load1: load,
      stderr: why ? tail(r.stderr, 3000) : undefined, builds: c === "one" ? 1 : widthOf(c) + 1,
      ...(isNsh(v) && c !== "one" ? { submits } : {}), ...(cancelledBefore ? { cancelledBefore } : {}),
    };
    const cancelled = cancelledBefore ? ` (${cancelledBefore} lab job(s) cancelled before it)` : "";
    const when = round === 0 ? "warm-up" : `round ${round}/${of}`;
    process.stderr.write(`  ${c}, ${when}: ${LABEL[v]} ${run.ok ? `${r.ms.toFixed(0)} ms` : `FAILED (${why})`}${cancelled}\n`);
    if (!run.ok) process.stderr.write(`${tail(r.stderr, 1500)}\n`);
    return run;
  };

  // Slurm's own delay: submit → the job's script runs. Jobs are submitted concurrently, as nsh's hooks do.
  const stampDir = fs.mkdtempSync(path.join(lab.slurm.jobsDir, "bench-ref-"));
  let stampSerial = 0;
  const slurmWave = async (count: number): Promise<{ ms: number; each: number[] }> => {
    const files = Array.from({ length: count }, () => path.join(stampDir, String(stampSerial++)));
    const t0 = Date.now();
    const sbatch = (f: string) => ["sbatch", "--parsable", "-o", "/dev/null", "--wrap", `date +%s%N > ${f}.tmp && mv ${f}.tmp ${f}`];
    const submits = await Promise.all(files.map((f) => lab.slurm.run(sbatch(f), { timeoutMs: 60_000 })));
    const bad = submits.find((r) => r.code !== 0);
    if (bad) throw new Error(`sbatch failed: ${bad.stderr.trim()}`);
    const deadline = Date.now() + 120_000;
    while (!files.every((f) => fs.existsSync(f))) {
      if (Date.now() > deadline) {
        const missing = files.filter((f) => !fs.existsSync(f)).length;
        throw new Error(`Slurm reference: ${missing} of ${count} jobs did not start within 120 s`);
      }
      await Bun.sleep(5);
    }
    const each = files.map((f) => Number(BigInt(fs.readFileSync(f, "utf8").trim()) / 1000n) / 1000 - t0);
    return { ms: max(each), each };
  };
  const slurmRef = async (c: CaseId, round: number): Promise<SlurmRef> => {
    await endLabJobs();
    const a = await slurmWave(widthOf(c));
    const b = c === "one" ? { ms: 0, each: [] } : await slurmWave(1);
    // Its jobs end at once: let them leave the queue, so the next run's clean-up cancels only pilots.
    for (const end = Date.now() + 30_000; Date.now() < end && (await queued()).length; ) await Bun.sleep(250);
    return { caseId: c, round, ms: a.ms + b.ms, each: [...a.each, ...b.each] };
  };

  const builds: BuildRun[] = [];
  const refs: SlurmRef[] = [];
  const probes: ProbeRun[] = [];
  const roots = [lab.nix.daemonPid ?? 0, lab.sshd.pid, ...Object.values(lab.slurm.pids)];
  const probed = async (c: CaseId, v: Variant, round: number, of: number): Promise<BuildRun> => {
    if (c === "one" || v === "local" || round === 0) return runBuild(c, v, round, of);
    await endLabJobs(); // not inside the probe's window
    const probe = startProbe({
      nshExe: nsh, roots, sshPort: lab.sshd.port, requests: requests.log, stepdMarker: lab.slurm.confFile,
    });
    const run = await runBuild(c, v, round, of);
    probes.push({ caseId: c, variant: v, round, ok: run.ok, builds: run.builds, summary: probe.stop() });
    return run;
  };
  for (const c of o.cases) {
    const of = o.roundsOf(c);
    // Warm-up, not counted: nsh places its agent binary on the cluster once, ssh and page cache.
    // The 200-wide case has none when an earlier case warmed up.
    if (c !== "wider" || !builds.length) for (const v of o.variants) builds.push(await runBuild(c, v, 0, of));
    if (c !== "wider" || !refs.length) await slurmRef(c, 0);
    for (let round = 1; round <= of; round++) {
      for (const v of rotate([...o.variants], round - 1)) builds.push(await probed(c, v, round, of));
      const ref = await slurmRef(c, round);
      refs.push(ref);
      process.stderr.write(`  ${c}, round ${round}/${of}: Slurm reference ${ref.ms.toFixed(0)} ms\n`);
    }
  }
  await endLabJobs();
  fs.writeFileSync(lab.nshConf, baseConf);

  // Slurm jobs per run: the distinct job ids in nsh's records of the run's derivations.
  const jobsOut = Bun.spawnSync([nsh, "jobs", "--all", "--json"], { env: { ...env, NSH_CONF: lab.nshConf } });
  const records = parseJobLines(jobsOut.stdout.toString(), jobsOut.exitCode);
  for (const r of builds.filter((b) => isNsh(b.variant))) {
    r.jobs = new Set(recordsOf(records, r.salt).flatMap((j) => (j.jobId ? [j.jobId] : []))).size;
  }
  return { builds, refs, probes, records };
}
