// The tables of the hook benchmark's build cases (bench/hook.ts): wall times, Slurm jobs per build,
// the overhead goal (nsh and pilot against build-remote and a local build, beyond Slurm alone), nsh's
// phases and its queue phase split by slurmctld's log, and the probe's tables (bench/hook-wide.ts).
// It reads nothing itself: runs, job records and slurmctld's times come in.
import type { BuildCasesResult } from "./hook-builds.ts";
import { recordsOf } from "./hook-builds.ts";
import { isNsh, jobsTable, LABEL, type CaseId, type OverheadGoal, type Variant } from "./hook-report.ts";
import { probeTables } from "./hook-wide.ts";
import { max, median, min, table } from "./lib.ts";

const fmt = (x: number, digits = 0) => (Number.isFinite(x) ? x.toFixed(digits) : "–");

export interface BuildTablesInput extends BuildCasesResult {
  cases: readonly CaseId[];
  variants: readonly Variant[];
  caseLabel(c: CaseId): string;
  widthOf(c: CaseId): number;
  roundsOf(c: CaseId): number;
  /** slurmctld's log: job id → submit RPC and allocation times (epoch ms) */
  submitAt: Map<string, number>;
  allocAt: Map<string, number>;
}

export interface BuildTables {
  tables: string[];
  goalLines: string[];
  /** (a)'s overhead goal for nsh (one job per build), when nsh, br and local ran */
  oneGoal?: OverheadGoal;
  summary: Record<string, unknown>[];
  queueSplit: Record<string, Array<{ before: number; slurm: number; seen: number }>>;
}

export function buildTables(o: BuildTablesInput): BuildTables {
  const { builds, refs, records, cases, variants, caseLabel, widthOf, submitAt, allocAt } = o;
  const counted = (c: CaseId, v: Variant) => builds.filter((r) => r.caseId === c && r.variant === v && r.round > 0);
  const good = (c: CaseId, v: Variant) => counted(c, v).filter((r) => r.ok);
  const med = (c: CaseId, v: Variant) => median(good(c, v).map((r) => r.ms));
  const slurmAlone = (c: CaseId) => refs.filter((r) => r.caseId === c).map((r) => r.ms);
  const nshVariants = variants.filter(isNsh);
  const out: BuildTables = { tables: [], goalLines: [], summary: [], queueSplit: {} };

  const rows: Array<Array<string | number>> = [];
  for (const c of cases)
    for (const v of variants) {
      const ms = good(c, v).map((r) => r.ms);
      rows.push([caseLabel(c), LABEL[v], `${ms.length} / ${counted(c, v).length}`, fmt(min(ms)), fmt(median(ms)), fmt(max(ms))]);
    }
  for (const c of cases) {
    const ms = slurmAlone(c);
    const what = c === "one" ? "Slurm alone: sbatch → the job's script runs" : `Slurm alone: ${widthOf(c)} sbatch at once → all running, then 1 more`;
    rows.push([caseLabel(c), what, `${ms.length}`, fmt(min(ms)), fmt(median(ms)), fmt(max(ms))]);
  }
  out.tables.push(table(["case", "variant", "ok runs", "min ms", "median ms", "max ms"], rows));
  if (nshVariants.length) out.tables.push(jobsTable(builds, cases, variants, caseLabel));

  const gRows: Array<Array<string | number>> = [];
  for (const c of cases)
    for (const v of nshVariants) {
      const [nshMs, brMs, localMs, slurmMs] = [med(c, v), med(c, "br"), med(c, "local"), median(slurmAlone(c))];
      const nBuilds = c === "one" ? 1 : widthOf(c) + 1;
      const brOver = (brMs - localMs) / nBuilds;
      const nshOver = (nshMs - localMs - slurmMs) / nBuilds;
      const pairs: number[] = [];
      for (let round = 1; round <= o.roundsOf(c); round++) {
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
      const measured = Number.isFinite(judged) && Number.isFinite(brOver);
      const met = measured ? judged <= brOver : undefined;
      const word = met === undefined ? "not measured (needs br and local)" : met ? "met" : "not met";
      if (c === "one" && v === "nsh") out.oneGoal = { judgedMs: judged, brOverMs: brOver };
      gRows.push([
        caseLabel(c), LABEL[v], (nshMs / brMs).toFixed(3), pairs.length ? `${min(pairs).toFixed(2)} – ${max(pairs).toFixed(2)}` : "–",
        fmt(brOver), fmt((nshMs - localMs) / nBuilds), fmt(slurmMs / nBuilds), fmt(nshOver), fmt(nshOverOwn), word,
      ]);
      const basis = c === "one" && !Number.isNaN(nshOverOwn)
        ? `beyond its own job's Slurm delay (${fmt(nshOver)} ms beyond the separate Slurm reference)`
        : "beyond Slurm alone";
      const verdict = `${fmt(judged)} ms per build vs build-remote's ${fmt(brOver)} ms: ${met ? "met" : "NOT met"}`;
      out.goalLines.push(`${caseLabel(c)}, ${v}: ${measured ? `overhead ${basis} ${verdict}` : word}`);
      out.summary.push({
        case: c, variant: v, nshMedianMs: nshMs, brMedianMs: brMs, localMedianMs: localMs, slurmMedianMs: slurmMs, builds: nBuilds,
        brOverheadPerBuildMs: brOver, nshOverheadBeyondSlurmPerBuildMs: nshOver, nshOverheadBeyondOwnJobDelayMs: nshOverOwn, goalMet: met,
      });
    }
  if (gRows.length) {
    out.tables.push(table([
      "case", "variant", "/ build-remote (ratio of medians)", "per-round range",
      "build-remote overhead per build ms (br − local) / builds", "overhead per build ms (nsh − local) / builds",
      "Slurm alone per build ms", "overhead beyond Slurm per build ms",
      "the same, beyond its own job's Slurm delay (slurmctld log; one build only)", "goal: beyond Slurm ≤ build-remote",
    ], gRows));
  }

  const pRows: Array<Array<string | number>> = [];
  const qRows: Array<Array<string | number>> = [];
  for (const c of cases)
    for (const v of nshVariants) {
      const recs = counted(c, v).flatMap((r) => recordsOf(records, r.salt));
      if (!recs.length) continue;
      const ph = (p: string) => recs.flatMap((j) => (typeof j.phases[p] === "number" ? [j.phases[p] * 1000] : []));
      const sums = recs.map((j) => ["queue", "upload", "build", "download"].reduce((s, p) => s + (j.phases[p] ?? 0) * 1000, 0));
      const states = recs.reduce<Record<string, number>>((m, j) => ((m[j.state] = (m[j.state] ?? 0) + 1), m), {});
      const stateText = Object.entries(states).map(([k, n]) => `${n} ${k}`).join(", ");
      pRows.push([
        caseLabel(c), LABEL[v], `${recs.length} (${stateText})`, fmt(median(ph("queue"))), fmt(median(ph("upload"))),
        fmt(median(ph("build"))), fmt(median(ph("download"))), fmt(median(sums)), fmt(max(ph("queue"))),
      ]);
      const split = recs.flatMap((j) => {
        const [sub, alloc] = [submitAt.get(j.jobId ?? ""), allocAt.get(j.jobId ?? "")];
        if (sub === undefined || alloc === undefined || typeof j.phases.queue !== "number") return [];
        return [{ before: sub - j.submittedAt, slurm: alloc - sub, seen: j.submittedAt + j.phases.queue * 1000 - alloc }];
      });
      // A pilot's later builds share its job id: only the build that submitted it has this split.
      const own = v === "pilot" ? split.filter((x) => x.before >= 0) : split;
      const col = (pick: (x: (typeof own)[number]) => number, f: (xs: number[]) => number) => fmt(f(own.map(pick)));
      if (own.length) {
        qRows.push([
          caseLabel(c), LABEL[v], own.length, col((x) => x.before, median), col((x) => x.slurm, median),
          col((x) => x.slurm, max), col((x) => x.seen, median), col((x) => x.seen, max),
        ]);
      }
      out.queueSplit[`${c} ${v}`] = own;
    }
  if (pRows.length) {
    out.tables.push(table([
      "case (nsh job records of the counted runs)", "variant", "builds", "queue ms (median)", "upload ms", "build ms",
      "download ms", "sum ms (median)", "queue ms (max)",
    ], pRows));
  }
  if (qRows.length) {
    out.tables.push(table([
      "nsh's queue phase, split by slurmctld's log", "variant", "jobs", "nsh before the submit RPC ms (median)",
      "Slurm: submit → allocation ms (median)", "(max)", "allocation → nsh sees it running ms (median)", "(max)",
    ], qRows));
  }
  out.tables.push(...probeTables(o.probes, caseLabel as (c: never) => string, LABEL));
  return out;
}
