// schedulers: the same builds through each scheduler backend nsh has, side by side in one run:
//   slurm (slurmrestd), slurm-cli (sbatch & co.), slurm-native (libslurm) on one Slurm 22.05 lab
//   (test/lab/cluster.ts), pbs (libpbs) and pbs-cli (qsub & co.) on one real OpenPBS lab
//   (test/hook-pbs/lab.ts); nsh.conf switches a lab between its backends before each run.
// (a) one derivation and (b) N independent ones plus an aggregate (bench/expr/hook.nix, as in
// bench/hook.ts), in rounds that rotate the order of the backends. Per backend: wall time,
// submit → running (nsh's job records), and the scheduler calls each run made, counted at the
// boundary: an HTTP proxy in front of slurmrestd, wrapper scripts as slurm-bin-dir/pbs-bin-dir, and
// NSH_FFI_TRACE=1 for the native ones (the hook runs through a wrapper that keeps its stderr).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { startClusterLab, type ClusterLab } from "../test/lab/cluster.ts";
import { ensureLibslurmDev } from "../test/lab/libslurm-dev.ts";
import { startPbsHookLab, type PbsHookLab } from "../test/hook-pbs/lab.ts";
import {
  addCalls, type CallCounts, type CallKind, classifyCliLine, classifyFfiLine, classifyRest, confOverrides, countCalls,
  fmtCalls,
  hookWrapper, isPbs, noCalls, parseBackends, parseJobLines, parseSlurmctldLog, type RecordLite, recordsOfRun,
  type SchedBackend, toolWrapper, withOverrides,
} from "./schedulers-calls.ts";
import { buildArgv, type CaseId, expectedOutput, parseCases, reportTables, rotate, type Run } from "./schedulers-report.ts";
import {
  EXPR, envNumber, envString, max, median, min, onCleanup, salt, sigstopBin, tail, timed, type Bench, type BenchResult,
} from "./lib.ts";

const WORKLOAD = path.join(EXPR, "hook.nix");
const load1 = (): number => Number(fs.readFileSync("/proc/loadavg", "utf8").split(" ")[0]);

/** A directory others may enter (the PBS user runs the pbs-cli wrappers and appends to their log). */
function openDir(dir: string, mode: number): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.chmodSync(dir, mode);
  return dir;
}

/** An HTTP proxy in front of slurmrestd that tells `count` what each request was. */
export function countingProxy(upstream: string, count: (kind: CallKind) => void): ReturnType<typeof Bun.serve> {
  return Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const url = new URL(req.url);
      count(classifyRest(req.method, url.pathname));
      const body = req.method === "GET" || req.method === "HEAD" ? undefined : await req.arrayBuffer();
      const res = await fetch(`${upstream}${url.pathname}${url.search}`, { method: req.method, headers: req.headers, body });
      const type = res.headers.get("content-type") ?? "application/json";
      return new Response(await res.arrayBuffer(), { status: res.status, headers: { "content-type": type } });
    },
  });
}

export const schedulers: Bench = {
  name: "schedulers",
  title: "one build and 50 + aggregate through each scheduler backend: wall time, submit → running, scheduler calls",
  async run(): Promise<BenchResult> {
    const rounds = envNumber("NSH_BENCH_ROUNDS", 3);
    const wideRounds = envNumber("NSH_BENCH_WIDE_ROUNDS", 2);
    const wideN = envNumber("NSH_BENCH_WIDE", 50);
    const timeoutMs = envNumber("NSH_BENCH_TIMEOUT", 600) * 1000;
    const cases = parseCases(envString("NSH_BENCH_CASES", "one,wide"));
    const backends = parseBackends(process.env.NSH_BENCH_BACKENDS);
    const nsh = path.join(path.dirname(sigstopBin()), "nsh");
    // pbs runs each libpbs conversation as `nsh __pbs-client` under the PBS user: it must reach the snapshot.
    fs.chmodSync(path.dirname(nsh), 0o755);
    const notes: string[] = [];

    const work = openDir(fs.mkdtempSync(path.join(os.tmpdir(), "nsh-bench-sched-")), 0o755);
    onCleanup(() => fs.rmSync(work, { recursive: true, force: true }));
    const hookLogs = openDir(path.join(work, "hooks"), 0o700);
    const toolLogs = openDir(path.join(work, "calls"), 0o1777);
    const hookPath = path.join(work, "hook.sh");
    fs.writeFileSync(hookPath, hookWrapper(nsh, hookLogs), { mode: 0o755 });
    const toolLog = (b: SchedBackend) => path.join(toolLogs, `${b}.log`);
    const wrapTools = (b: SchedBackend, tools: string[], realOf: (t: string) => string): string => {
      const dir = openDir(path.join(work, `${b}-bin`), 0o755);
      fs.writeFileSync(toolLog(b), "", { mode: 0o666 });
      fs.chmodSync(toolLog(b), 0o666);
      for (const t of tools) fs.writeFileSync(path.join(dir, t), toolWrapper(t, realOf(t), toolLog(b)), { mode: 0o755 });
      return dir;
    };

    // Labs: one Slurm lab (started for REST) and one PBS lab (started for libpbs), as needed.
    let slurmLab: ClusterLab | undefined;
    let pbsLab: PbsHookLab | undefined;
    const restKinds: CallKind[] = [];
    let proxy: ReturnType<typeof Bun.serve> | undefined;
    try {
      const conf: Partial<Record<SchedBackend, string>> = {};
      if (backends.some((b) => !isPbs(b))) {
        if (backends.includes("slurm-native")) await ensureLibslurmDev();
        slurmLab = await startClusterLab("bench-sched", "slurm");
        const lab = slurmLab;
        proxy = countingProxy(lab.slurm.restUrl, (kind) => restKinds.push(kind));
        const slurmPath = { PATH: lab.slurm.env.PATH ?? process.env.PATH ?? "" };
        const real = (t: string): string => {
          const found = Bun.which(t, slurmPath);
          if (!found) throw new Error(`${t} is not on the Slurm lab's PATH`);
          return found;
        };
        const binDir = backends.includes("slurm-cli")
          ? wrapTools("slurm-cli", ["sbatch", "squeue", "sacct", "scancel"], real)
          : undefined;
        const ctx = { proxyPort: proxy.port, slurmConf: lab.slurm.confFile, binDir };
        for (const b of backends.filter((x) => !isPbs(x))) conf[b] = confOverrides(b, ctx);
      }
      if (backends.some(isPbs)) {
        pbsLab = await startPbsHookLab("pbs", "bench-sched-pbs");
        const lab = pbsLab;
        // As the Slurm lab's node advertises 16 CPUs: PBS's MoM reports this machine's 2.
        const nodes = await lab.pbs.run(["pbsnodes", "-a", "-F", "json"], { timeoutMs: 30_000 });
        const names = Object.keys((JSON.parse(nodes.stdout || "{}") as { nodes?: Record<string, unknown> }).nodes ?? {});
        for (const n of names) {
          const r = await lab.pbs.qmgr(`set node ${n} resources_available.ncpus = 16`);
          if (r.code !== 0) notes.push(`PBS: setting ${n}'s ncpus to 16 failed: ${r.stderr.trim()}`);
        }
        const binDir = backends.includes("pbs-cli")
          ? wrapTools("pbs-cli", ["qsub", "qstat", "qdel"], (t) => path.join(lab.pbs.exec, "bin", t))
          : undefined;
        for (const b of backends.filter(isPbs)) conf[b] = confOverrides(b, { binDir, pbsUser: lab.pbs.user.name });
      }
      const labOf = (b: SchedBackend): ClusterLab | PbsHookLab => (isPbs(b) ? pbsLab! : slurmLab!);

      // ---------- the runs ----------
      let toolSeen: Partial<Record<SchedBackend, number>> = {};
      const takeCalls = (b: SchedBackend): CallCounts => {
        const rest = countCalls(restKinds.splice(0));
        let cli = noCalls();
        if (b === "slurm-cli" || b === "pbs-cli") {
          const text = fs.readFileSync(toolLog(b), "utf8");
          cli = countCalls(text.slice(toolSeen[b] ?? 0).split("\n").map(classifyCliLine));
          toolSeen = { ...toolSeen, [b]: text.length };
        }
        const ffiLines: string[] = [];
        for (const f of fs.readdirSync(hookLogs)) {
          ffiLines.push(...fs.readFileSync(path.join(hookLogs, f), "utf8").split("\n"));
          fs.rmSync(path.join(hookLogs, f), { force: true });
        }
        return addCalls(addCalls(rest, cli), countCalls(ffiLines.map(classifyFfiLine)));
      };
      const runs: Run[] = [];
      const runOne = async (b: SchedBackend, c: CaseId, round: number, of: number): Promise<Run> => {
        const lab = labOf(b);
        lab.writeConf();
        fs.writeFileSync(lab.nshConf, withOverrides(fs.readFileSync(lab.nshConf, "utf8"), conf[b] ?? ""));
        takeCalls(b); // whatever came between runs is nobody's
        const s = salt();
        const load = load1();
        const r = await timed(buildArgv(WORKLOAD, c, s, wideN, hookPath), lab.nix.env, { timeoutMs });
        await Bun.sleep(300); // the last hook's tee writes its copy
        const calls = takeCalls(b);
        let why = r.timedOut ? `timed out after ${timeoutMs / 1000} s` : undefined;
        if (!why && r.code !== 0) why = `exit ${r.code ?? r.signal}: ${tail(r.stderr, 800)}`;
        const out = r.stdout.trim().split("\n").at(-1) ?? "";
        const got = why || !fs.existsSync(out) ? "" : fs.readFileSync(out, "utf8").trim();
        if (!why && got !== expectedOutput(c, s, wideN)) why = `exit 0, but ${out || "no output path"} holds '${got}'`;
        const run: Run = { backend: b, caseId: c, round, salt: s, ms: r.ms, ok: !why, why, load1: load, calls };
        const when = round === 0 ? "warm-up" : `round ${round}/${of}`;
        const said = run.ok ? `${r.ms.toFixed(0)} ms, calls ${fmtCalls(calls)}` : `FAILED (${why})`;
        process.stderr.write(`  ${c}, ${when}: ${b} ${said}\n`);
        return run;
      };
      // Warm-up, not counted: the agent binary is placed once per cluster, slurm-native compiles its shim.
      for (const b of backends) runs.push(await runOne(b, "one", 0, rounds));
      for (const c of (["one", "wide"] as CaseId[]).filter((x) => cases.includes(x))) {
        const of = c === "one" ? rounds : wideRounds;
        for (let round = 1; round <= of; round++) {
          for (const b of rotate(backends, round - 1)) runs.push(await runOne(b, c, round, of));
        }
      }

      // ---------- nsh's records, slurmctld's log ----------
      const records: RecordLite[] = [];
      for (const lab of [slurmLab, pbsLab]) {
        if (!lab) continue;
        const pbsConf = "pbs" in lab ? { PBS_CONF_FILE: lab.pbs.confFile } : {};
        const env = { ...lab.nix.env, NSH_CONF: lab.nshConf, ...pbsConf };
        records.push(...parseJobLines(Bun.spawnSync([nsh, "jobs", "--all", "--json"], { env }).stdout.toString()));
      }
      const ctld = slurmLab ? parseSlurmctldLog(fs.readFileSync(slurmLab.slurm.logs.slurmctld, "utf8")) : undefined;

      const tables = reportTables({ backends, cases, width: wideN, runs, records, ctld });
      const loads = runs.filter((r) => r.round > 0).map((r) => r.load1);
      const counts = cases.map((c) => (c === "one" ? `1 build ${rounds}` : `${wideN} + aggregate ${wideRounds}`)).join(", ");
      notes.push(
        `Rounds: ${counts}; one warm-up single build per backend first, not counted; the order of the backends rotates`
          + ` every round. nsh ran as ${nsh} (a snapshot of dist/nsh) through ${hookPath} (NSH_FFI_TRACE=1, stderr`
          + " copied to a file).",
        `"other" calls: REST pings and the OpenAPI document; sbatch --version and qstat -B; libslurm init/ping;`
          + " pbs_connect (one per libpbs conversation) and pbs_statserver.",
      );
      if (loads.length) {
        const range = `${min(loads).toFixed(2)} – ${max(loads).toFixed(2)} (median ${median(loads).toFixed(2)})`;
        notes.push(`1-minute load average before the counted runs: ${range} on ${navigator.hardwareConcurrency} cores.`);
      }
      for (const r of runs.filter((x) => !x.ok)) {
        notes.push(`FAILED (${r.backend}, ${r.caseId}, ${r.round === 0 ? "warm-up" : `round ${r.round}`}): ${r.why}`);
      }
      for (const r of runs.filter((x) => x.ok && x.calls.submit === 0)) {
        const what = `${r.backend}, ${r.caseId}, round ${r.round}`;
        notes.push(`NO SUBMIT COUNTED (${what}): the counting misses this backend's calls`);
      }
      const jobs = runs.filter((r) => r.round > 0)
        .flatMap((r) => recordsOfRun(records, r.salt).map((j) => ({ backend: r.backend, caseId: r.caseId, ...j })));
      return {
        tables,
        notes,
        data: {
          settings: { rounds, wideRounds, wideN, timeoutMs, cases, backends, conf },
          runs,
          jobs,
        },
      };
    } finally {
      proxy?.stop(true);
      await slurmLab?.cleanup();
      await pbsLab?.cleanup();
    }
  },
};
