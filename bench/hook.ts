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
import { probeTables } from "./hook-wide.ts";
import { recordsOf, runBuildCases } from "./hook-builds.ts";
import { runDeclines } from "./hook-decline.ts";
import {
  DEFAULT_PILOT, isNsh, issue11Verdicts, jobsTable, LABEL, parsePilotSettings, parseVariants, ratioLine,
  type CaseId, type OverheadGoal, type Variant,
} from "./hook-report.ts";
import { envNumber, envString, max, median, min, sigstopBin, table, type Bench, type BenchResult } from "./lib.ts";

const fmt = (x: number, digits = 0) => (Number.isFinite(x) ? x.toFixed(digits) : "–");

export const hook: Bench = {
  name: "hook",
  title: "nsh as build hook (Slurm jobs, pilot jobs) vs Nix's build-remote over ssh: 1 build, 50 + aggregate, 1000 declines",
  async run(): Promise<BenchResult> {
    const rounds = envNumber("NSH_BENCH_ROUNDS", 3);
    const wideRounds = envNumber("NSH_BENCH_WIDE_ROUNDS", Math.max(2, Math.ceil((rounds * 2) / 3)));
    const wideN = envNumber("NSH_BENCH_WIDE", 50);
    const [widerN, widerJobs, widerRounds] = [envNumber("NSH_BENCH_WIDER", 200), envNumber("NSH_BENCH_WIDER_JOBS", 64), envNumber("NSH_BENCH_WIDER_ROUNDS", 1)];
    const widthOf = (c: CaseId) => (c === "one" ? 1 : c === "wide" ? wideN : widerN);
    const jobsOf = (c: CaseId) => (c === "wider" ? widerJobs : 16);
    const roundsOf = (c: CaseId) => (c === "one" ? rounds : c === "wide" ? wideRounds : widerRounds);
    const tries = envNumber("NSH_BENCH_TRIES", 1000);
    const declineRounds = envNumber("NSH_BENCH_DECLINE_ROUNDS", 3);
    const timeoutMs = envNumber("NSH_BENCH_TIMEOUT", 600) * 1000;
    const cases = envString("NSH_BENCH_CASES", "startup,one,wide,wider,decline").split(",").map((s) => s.trim());
    for (const c of cases) if (!["startup", "one", "wide", "wider", "decline"].includes(c)) throw new Error(`NSH_BENCH_CASES: expected startup, one, wide, wider and/or decline, got '${c}'`);
    const variants = parseVariants(envString("NSH_BENCH_VARIANTS", "nsh,pilot,br,local"));
    const pilotConf = parsePilotSettings(envString("NSH_BENCH_PILOT", DEFAULT_PILOT));
    const nsh = path.join(path.dirname(sigstopBin()), "nsh");

    // Start-up CPU first, on a machine without the lab's daemons: bench/startup.ts, with its own settings.
    const started = cases.includes("startup") ? await startup.run() : undefined;
    const lab: ClusterLab = await startClusterLab("bench-hook");
    try {
      // The builder must offer the feature it is listed with: its chroot store gets system-features
      // (a store setting, as nsh's agent gives the node's Nix extra-system-features).
      const lineFor = (maxJobs: number) => buildersLine(lab.sshd, { features: ["nsh"], maxJobs, remoteStore: `${lab.sshd.remoteStore}&system-features=nsh` });
      const line = lineFor(16);
      const notes: string[] = [];
      const buildCases = (["one", "wide", "wider"] as CaseId[]).filter((c) => cases.includes(c));

      // ---------- (a), (b) and (b2) ----------
      const { builds, refs, probes, records } = await runBuildCases({ lab, nsh, cases: buildCases, variants, pilotConf, widthOf, jobsOf, roundsOf, lineFor, timeoutMs });
      // slurmctld's log (ms timestamps, local time) splits each nsh job's queue phase: nsh's own work
      // before the submit RPC, Slurm's submit → allocation, and allocation → nsh sees it running.
      const { submitAt, allocAt } = parseSlurmctldLog(fs.readFileSync(lab.slurm.logs.slurmctld, "utf8"));

      // ---------- (c) ----------
      const declined = cases.includes("decline") ? await runDeclines({ lab, nsh, line, tries, declineRounds, timeoutMs }) : undefined;

      // ---------- tables ----------
      const tables: string[] = started?.tables.map((t) => `start-up (bench/startup.ts):\n\n${t}`) ?? [];
      const counted = (c: CaseId, v: Variant) => builds.filter((r) => r.caseId === c && r.variant === v && r.round > 0);
      const good = (c: CaseId, v: Variant) => counted(c, v).filter((r) => r.ok);
      const med = (c: CaseId, v: Variant) => median(good(c, v).map((r) => r.ms));
      const caseLabel = (c: CaseId) => (c === "one" ? "(a) 1 derivation" : `(b${c === "wide" ? "" : "2"}) ${widthOf(c)} + aggregate, -j ${jobsOf(c)}`);
      const nshVariants = variants.filter(isNsh);
      const summary: Record<string, unknown>[] = [];
      const queueSplit: Record<string, Array<{ before: number; slurm: number; seen: number }>> = {};
      const goalLines: string[] = [];
      let oneGoal: OverheadGoal | undefined;
      if (buildCases.length) {
        const rows: Array<Array<string | number>> = [];
        for (const c of buildCases)
          for (const v of variants) {
            const ms = good(c, v).map((r) => r.ms);
            rows.push([caseLabel(c), LABEL[v], `${ms.length} / ${counted(c, v).length}`, fmt(min(ms)), fmt(median(ms)), fmt(max(ms))]);
          }
        for (const c of buildCases) {
          const ms = refs.filter((r) => r.caseId === c).map((r) => r.ms);
          rows.push([caseLabel(c), c === "one" ? "Slurm alone: sbatch → the job's script runs" : `Slurm alone: ${widthOf(c)} sbatch at once → all running, then 1 more`, `${ms.length}`, fmt(min(ms)), fmt(median(ms)), fmt(max(ms))]);
        }
        tables.push(table(["case", "variant", "ok runs", "min ms", "median ms", "max ms"], rows));
        if (nshVariants.length) tables.push(jobsTable(builds, buildCases, variants, caseLabel));

        const gRows: Array<Array<string | number>> = [];
        for (const c of buildCases)
          for (const v of nshVariants) {
            const nshMs = med(c, v);
            const brMs = med(c, "br");
            const localMs = med(c, "local");
            const slurmMs = median(refs.filter((r) => r.caseId === c).map((r) => r.ms));
            const nBuilds = c === "one" ? 1 : widthOf(c) + 1;
            const brOver = (brMs - localMs) / nBuilds;
            const nshOver = (nshMs - localMs - slurmMs) / nBuilds;
            const pairs: number[] = [];
            for (let round = 1; round <= roundsOf(c); round++) {
              const a = counted(c, v).find((r) => r.round === round && r.ok);
              const b = counted(c, "br").find((r) => r.round === round && r.ok);
              if (a && b) pairs.push(a.ms / b.ms);
            }
            // For one build: the Slurm delay of nsh's own job in that run (slurmctld: submit RPC → allocation).
            const own = good(c, v).flatMap((r) => {
              const id = recordsOf(records, r.salt)[0]?.jobId ?? "";
              const [sub, alloc] = [submitAt.get(id), allocAt.get(id)];
              return sub !== undefined && alloc !== undefined ? [r.ms - localMs - (alloc - sub)] : [];
            });
            const nshOverOwn = c === "one" && own.length ? median(own) : Number.NaN;
            // Slurm's scheduler runs on a ~1 s tick, so a separately submitted reference job waits
            // 0–1 s at random: for one build, the delay of nsh's own job is Slurm's delay for it.
            const judged = c === "one" && !Number.isNaN(nshOverOwn) ? nshOverOwn : nshOver;
            const met = judged <= brOver;
            if (c === "one" && v === "nsh") oneGoal = { judgedMs: judged, brOverMs: brOver };
            gRows.push([caseLabel(c), LABEL[v], (nshMs / brMs).toFixed(3), pairs.length ? `${min(pairs).toFixed(2)} – ${max(pairs).toFixed(2)}` : "–", fmt(brOver), fmt((nshMs - localMs) / nBuilds), fmt(slurmMs / nBuilds), fmt(nshOver), fmt(nshOverOwn), met ? "met" : "not met"]);
            const basis = judged === nshOver ? "beyond Slurm alone" : `beyond its own job's Slurm delay (${fmt(nshOver)} ms beyond the separate Slurm reference)`;
            goalLines.push(`${caseLabel(c)}, ${v}: overhead ${basis} ${fmt(judged)} ms per build vs build-remote's ${fmt(brOver)} ms: ${met ? "met" : "NOT met"}`);
            summary.push({ case: c, variant: v, nshMedianMs: nshMs, brMedianMs: brMs, localMedianMs: localMs, slurmMedianMs: slurmMs, builds: nBuilds, brOverheadPerBuildMs: brOver, nshOverheadBeyondSlurmPerBuildMs: nshOver, nshOverheadBeyondOwnJobDelayMs: nshOverOwn, goalMet: met });
          }
        if (gRows.length) tables.push(table(["case", "variant", "/ build-remote (ratio of medians)", "per-round range", "build-remote overhead per build ms (br − local) / builds", "overhead per build ms (nsh − local) / builds", "Slurm alone per build ms", "overhead beyond Slurm per build ms", "the same, beyond its own job's Slurm delay (slurmctld log; one build only)", "goal: beyond Slurm ≤ build-remote"], gRows));

        const pRows: Array<Array<string | number>> = [];
        const qRows: Array<Array<string | number>> = [];
        for (const c of buildCases)
          for (const v of nshVariants) {
            const recs = counted(c, v).flatMap((r) => recordsOf(records, r.salt));
            if (!recs.length) continue;
            const ph = (p: string) => recs.map((j) => j.phases[p]).filter((x): x is number => typeof x === "number").map((x) => x * 1000);
            const sums = recs.map((j) => ["queue", "upload", "build", "download"].reduce((s, p) => s + (j.phases[p] ?? 0) * 1000, 0));
            const states = recs.reduce<Record<string, number>>((m, j) => ((m[j.state] = (m[j.state] ?? 0) + 1), m), {});
            pRows.push([caseLabel(c), LABEL[v], `${recs.length} (${Object.entries(states).map(([k, n]) => `${n} ${k}`).join(", ")})`, fmt(median(ph("queue"))), fmt(median(ph("upload"))), fmt(median(ph("build"))), fmt(median(ph("download"))), fmt(median(sums)), fmt(max(ph("queue")))]);
            const split = recs.flatMap((j) => {
              const [sub, alloc] = [submitAt.get(j.jobId ?? ""), allocAt.get(j.jobId ?? "")];
              if (sub === undefined || alloc === undefined || typeof j.phases.queue !== "number") return [];
              return [{ before: sub - j.submittedAt, slurm: alloc - sub, seen: j.submittedAt + j.phases.queue * 1000 - alloc }];
            });
            // A pilot's later builds share its job id: only the build that submitted it has this split.
            const own = v === "pilot" ? split.filter((x) => x.before >= 0) : split;
            if (own.length) qRows.push([caseLabel(c), LABEL[v], own.length, fmt(median(own.map((x) => x.before))), fmt(median(own.map((x) => x.slurm))), fmt(max(own.map((x) => x.slurm))), fmt(median(own.map((x) => x.seen))), fmt(max(own.map((x) => x.seen)))]);
            queueSplit[`${c} ${v}`] = own;
          }
        if (pRows.length) tables.push(table(["case (nsh job records of the counted runs)", "variant", "builds", "queue ms (median)", "upload ms", "build ms", "download ms", "sum ms (median)", "queue ms (max)"], pRows));
        if (qRows.length) tables.push(table(["nsh's queue phase, split by slurmctld's log", "variant", "jobs", "nsh before the submit RPC ms (median)", "Slurm: submit → allocation ms (median)", "(max)", "allocation → nsh sees it running ms (median)", "(max)"], qRows));
        tables.push(...probeTables(probes, caseLabel as (c: never) => string, LABEL));
      }
      if (declined) tables.push(...declined.tables);

      const ratios = buildCases.filter((c) => c !== "one").flatMap((c) => ratioLine(builds, c, caseLabel(c)) ?? []);
      const verdicts = buildCases.length ? issue11Verdicts(builds, oneGoal) : [];
      notes.unshift(
        ...(started?.notes.map((n) => `start-up: ${n}`) ?? []),
        ...ratios.map((r) => `Ratio ${r}.`),
        ...(verdicts.length ? ["Issue 11 goals:", ...verdicts.map((v) => `  ${v.line}`)] : []),
        `Goal (overhead): per build beyond Slurm's own scheduling delay ≤ build-remote's whole per-build overhead. Overhead = median wall time minus the median local build of the same derivations (the hook declines once, Nix builds them itself); for nsh also minus Slurm alone (sbatch → the job's script runs); divided by the number of builds. ${goalLines.join("; ") || "(no build cases run)"}.`,
        `Rounds: (a) ${rounds}, (b) ${wideRounds}, (b2) ${widerRounds}, decline ${declineRounds}; one warm-up round each, not counted; order rotated every round. nsh ran as ${nsh} (the snapshot of dist/nsh). builders line: '${line}'. pilot: nsh.conf plus '${pilotConf.trim().replace(/\n/g, "; ")}'. Before every run the lab's Slurm jobs still queued (idle pilots) were cancelled and nsh's state forgot its pilots. In (b) and (b2) nsh reached slurmrestd through a counting proxy (bench/schedulers.ts's), and /proc was sampled every 100 ms during the counted nsh, pilot and build-remote runs.`,
      );
      if (declined) notes.push(...declined.notes);
      const loads = builds.filter((r) => r.round > 0).map((r) => r.load1).filter(Number.isFinite);
      if (loads.length) notes.push(`1-minute load average before the counted build runs: ${min(loads).toFixed(2)} – ${max(loads).toFixed(2)} (median ${median(loads).toFixed(2)}) on ${navigator.hardwareConcurrency} cores.`);
      for (const r of builds.filter((r) => r.round > 0 && !r.ok)) notes.push(`FAILED (${r.caseId}, round ${r.round}, ${LABEL[r.variant]}): ${r.why}`);

      return {
        tables,
        notes,
        data: {
          settings: { rounds, wideRounds, wideN, widerN, widerJobs, widerRounds, tries, declineRounds, timeoutMs, cases, variants, pilotConf, line },
          summary,
          verdicts,
          builds,
          slurm: refs,
          queueSplit,
          nshJobs: builds.filter((r) => isNsh(r.variant) && r.round > 0).flatMap((r) => recordsOf(records, r.salt).map((j) => ({ ...j, variant: r.variant }))),
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
