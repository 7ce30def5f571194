// hook: nsh as Nix's build hook on the lab Slurm against Nix's own build-remote over ssh, on one
// cluster lab (test/lab/cluster.ts: Nix 2.8 daemon, single-node Slurm 22.05 with slurmrestd, an sshd
// on 127.0.0.1 standing for the login host, the node and the ssh:// builder). bench/README.md has
// the details. (a) one trivial derivation, (b) 50 plus an aggregate, (b2) 200 plus an aggregate, all
// requiring feature "nsh" (bench/hook-builds.ts runs them):
//   nsh    nix-build --store daemon --option build-hook <nsh> -j 16 …      (the lab's nsh.conf)
//   pilot  the same with NSH_BENCH_PILOT's lines in nsh.conf (pilot jobs: one job serves many builds)
//   br     nix-build --store daemon --max-jobs 0 --builders '<ssh://… nsh, 16 slots>' … (default hook)
//   local  the same without the feature, built by the daemon (-j 16, --builders ''), to tell overhead
// interleaved with rotated order and fresh salts, plus Slurm alone (sbatch jobs that stamp their
// start) and nsh's phases from `nsh jobs --all --json`, its queue phase split by slurmctld's log.
// (c) 1000 tries that nsh declines: bench/hook-decline.ts. Pure parts: bench/hook-report.ts.
import fs from "node:fs";
import path from "node:path";
import { startClusterLab, type ClusterLab } from "../test/lab/cluster.ts";
import { buildersLine } from "../test/lab/sshd.ts";
import { parseSlurmctldLog } from "./schedulers-calls.ts";
import { startup } from "./startup.ts";
import { recordsOf, runBuildCases } from "./hook-builds.ts";
import { buildTables } from "./hook-tables.ts";
import { runDeclines } from "./hook-decline.ts";
import {
  DEFAULT_PILOT, isNsh, issue11Verdicts, LABEL, parsePilotSettings, parseVariants, ratioLine, type CaseId,
} from "./hook-report.ts";
import { envNumber, envString, max, median, min, sigstopBin, type Bench, type BenchResult } from "./lib.ts";

export const hook: Bench = {
  name: "hook",
  title:
    "nsh as build hook (Slurm jobs, pilot jobs) vs Nix's build-remote over ssh: 1 build, 50 + aggregate, 1000 declines",
  async run(): Promise<BenchResult> {
    const rounds = envNumber("NSH_BENCH_ROUNDS", 3);
    const wideRounds = envNumber("NSH_BENCH_WIDE_ROUNDS", Math.max(2, Math.ceil((rounds * 2) / 3)));
    const wideN = envNumber("NSH_BENCH_WIDE", 50);
    const widerN = envNumber("NSH_BENCH_WIDER", 200);
    const widerJobs = envNumber("NSH_BENCH_WIDER_JOBS", 64);
    const widerRounds = envNumber("NSH_BENCH_WIDER_ROUNDS", 1);
    const widthOf = (c: CaseId) => (c === "one" ? 1 : c === "wide" ? wideN : widerN);
    const jobsOf = (c: CaseId) => (c === "wider" ? widerJobs : 16);
    const roundsOf = (c: CaseId) => (c === "one" ? rounds : c === "wide" ? wideRounds : widerRounds);
    const tries = envNumber("NSH_BENCH_TRIES", 1000);
    const declineRounds = envNumber("NSH_BENCH_DECLINE_ROUNDS", 3);
    const timeoutMs = envNumber("NSH_BENCH_TIMEOUT", 600) * 1000;
    const cases = envString("NSH_BENCH_CASES", "startup,one,wide,wider,decline").split(",").map((s) => s.trim());
    for (const c of cases) {
      if (!["startup", "one", "wide", "wider", "decline"].includes(c)) {
        throw new Error(`NSH_BENCH_CASES: expected startup, one, wide, wider and/or decline, got '${c}'`);
      }
    }
    const variants = parseVariants(envString("NSH_BENCH_VARIANTS", "nsh,pilot,br,local"));
    const pilotConf = parsePilotSettings(envString("NSH_BENCH_PILOT", DEFAULT_PILOT));
    const nsh = path.join(path.dirname(sigstopBin()), "nsh");

    // Start-up CPU first, on a machine without the lab's daemons: bench/startup.ts, with its own settings.
    const started = cases.includes("startup") ? await startup.run() : undefined;
    const lab: ClusterLab = await startClusterLab("bench-hook");
    try {
      // The builder must offer the feature it is listed with: its chroot store gets system-features
      // (a store setting, as nsh's agent gives the node's Nix extra-system-features).
      const remoteStore = `${lab.sshd.remoteStore}&system-features=nsh`;
      const lineFor = (maxJobs: number) => buildersLine(lab.sshd, { features: ["nsh"], maxJobs, remoteStore });
      const line = lineFor(16);
      const notes: string[] = [];
      const buildCases = (["one", "wide", "wider"] as CaseId[]).filter((c) => cases.includes(c));

      // ---------- (a), (b) and (b2) ----------
      const { builds, refs, probes, records } = await runBuildCases({
        lab, nsh, cases: buildCases, variants, pilotConf, widthOf, jobsOf, roundsOf, lineFor, timeoutMs,
      });
      // slurmctld's log (ms timestamps, local time) splits each nsh job's queue phase: nsh's own work
      // before the submit RPC, Slurm's submit → allocation, and allocation → nsh sees it running.
      const { submitAt, allocAt } = parseSlurmctldLog(fs.readFileSync(lab.slurm.logs.slurmctld, "utf8"));

      // ---------- (c) ----------
      const declined = cases.includes("decline")
        ? await runDeclines({ lab, nsh, line, tries, declineRounds, timeoutMs })
        : undefined;

      // ---------- tables ----------
      const tables: string[] = started?.tables.map((t) => `start-up (bench/startup.ts):\n\n${t}`) ?? [];
      const caseLabel = (c: CaseId) =>
        c === "one" ? "(a) 1 derivation" : `(b${c === "wide" ? "" : "2"}) ${widthOf(c)} + aggregate, -j ${jobsOf(c)}`;
      const made = buildCases.length
        ? buildTables({
          builds, refs, probes, records, cases: buildCases, variants, caseLabel, widthOf, roundsOf, submitAt, allocAt,
        })
        : undefined;
      tables.push(...(made?.tables ?? []));
      if (declined) tables.push(...declined.tables);

      const ratios = buildCases.filter((c) => c !== "one").flatMap((c) => ratioLine(builds, c, caseLabel(c)) ?? []);
      const verdicts = buildCases.length ? issue11Verdicts(builds, made?.oneGoal) : [];
      notes.unshift(
        ...(started?.notes.map((n) => `start-up: ${n}`) ?? []),
        ...ratios.map((r) => `Ratio ${r}.`),
        ...(verdicts.length ? ["Issue 11 goals:", ...verdicts.map((v) => `  ${v.line}`)] : []),
        "Goal (overhead): per build beyond Slurm's own scheduling delay ≤ build-remote's whole per-build overhead. " +
          "Overhead = median wall time minus the median local build of the same derivations (the hook declines " +
          "once, Nix builds them itself); for nsh also minus Slurm alone (sbatch → the job's script runs); divided " +
          `by the number of builds. ${made?.goalLines.join("; ") || "(no build cases run)"}.`,
        `Rounds: (a) ${rounds}, (b) ${wideRounds}, (b2) ${widerRounds}, decline ${declineRounds}; one warm-up round ` +
          `each, not counted; order rotated every round. nsh ran as ${nsh} (the snapshot of dist/nsh). builders ` +
          `line: '${line}'. pilot: nsh.conf plus '${pilotConf.trim().replace(/\n/g, "; ")}'. Before every run the ` +
          "lab's Slurm jobs still queued (idle pilots) were cancelled and nsh's state forgot its pilots. In (b) and " +
          "(b2) nsh reached slurmrestd through a counting proxy (bench/schedulers.ts's), and /proc was sampled " +
          "every 100 ms during the counted nsh, pilot and build-remote runs.",
      );
      if (declined) notes.push(...declined.notes);
      const loads = builds.filter((r) => r.round > 0).map((r) => r.load1).filter(Number.isFinite);
      const [lo, mid, hi] = [min(loads), median(loads), max(loads)].map((x) => x.toFixed(2));
      if (loads.length) {
        notes.push(`1-minute load average before the counted build runs: ${lo} – ${hi} (median ${mid}) on ${navigator.hardwareConcurrency} cores.`);
      }
      for (const r of builds.filter((r) => r.round > 0 && !r.ok)) {
        notes.push(`FAILED (${r.caseId}, round ${r.round}, ${LABEL[r.variant]}): ${r.why}`);
      }

      return {
        tables,
        notes,
        data: {
          settings: {
            rounds, wideRounds, wideN, widerN, widerJobs, widerRounds, tries, declineRounds, timeoutMs, cases, variants,
            pilotConf, line,
          },
          summary: made?.summary,
          verdicts,
          builds,
          slurm: refs,
          queueSplit: made?.queueSplit,
          nshJobs: builds
            .filter((r) => isNsh(r.variant) && r.round > 0)
            .flatMap((r) => recordsOf(records, r.salt).map((j) => ({ ...j, variant: r.variant }))),
          probes,
          ...(declined?.data ?? {}),
          startup: started?.data,
        },
      };
    } finally {
      await lab.cleanup();
    }
  },
};
