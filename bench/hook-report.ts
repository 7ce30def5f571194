// Pure parts of the hook benchmark's build cases (bench/hook.ts, bench/hook-builds.ts): the variants,
// the NSH_BENCH_PILOT and NSH_BENCH_VARIANTS parsers, the table of Slurm jobs per build, the ratio
// line of pilot vs nsh vs build-remote, and issue 11's goal verdicts. Table-tested in
// test/unit/bench-hook-report.test.ts.
import { max, median, min, table } from "./lib.ts";

export type Variant = "nsh" | "pilot" | "br" | "local";
export const LABEL: Record<Variant, string> = {
  nsh: "nsh (one Slurm job per build)",
  pilot: "nsh with pilot jobs",
  br: "build-remote (ssh://)",
  local: "local build (hook declines at once)",
};
/** The variants in which nsh is the hook (and submits Slurm jobs). */
export const isNsh = (v: Variant): boolean => v === "nsh" || v === "pilot";

export type CaseId = "one" | "wide" | "wider";

/** round 0 = warm-up */
export interface BuildRun {
  caseId: CaseId;
  variant: Variant;
  round: number;
  salt: string;
  ms: number;
  ok: boolean;
  why?: string;
  load1: number;
  stderr?: string;
  /** builds in the run (derivations, with the aggregate) */
  builds: number;
  /** nsh variants: distinct Slurm job ids in nsh's job records of the run */
  jobs?: number;
  /** nsh variants from (b) on: POSTs to …/job/submit through the counting proxy during the run */
  submits?: number;
  /** lab jobs still queued before the run that the benchmark cancelled (pilots left idle) */
  cancelledBefore?: number;
}

export const DEFAULT_PILOT = "pilot-idle-time = 30; pilot-max-jobs = 4; pilot-builds-per-job = 4";

/** NSH_BENCH_PILOT: nsh.conf lines separated by `;` (or newlines) → nsh.conf text; a bad part is named. */
export function parsePilotSettings(text: string): string {
  const parts = text.split(/[;\n]/).map((s) => s.trim()).filter(Boolean);
  if (!parts.length) {
    throw new Error("NSH_BENCH_PILOT: empty, expected settings such as 'pilot-idle-time = 30; pilot-max-jobs = 4'");
  }
  for (const p of parts) {
    if (!/^[a-z][\w-]*\s*=\s*\S/.test(p)) throw new Error(`NSH_BENCH_PILOT: '${p}' is not 'setting = value'`);
  }
  const idle = parts.find((p) => /^pilot-idle-time\s*=/.test(p));
  if (!idle || !(Number(idle.split("=")[1]) > 0)) {
    throw new Error(
      "NSH_BENCH_PILOT: needs pilot-idle-time = <seconds > 0> (without it nsh submits one job per build), " +
        `got '${text}'`,
    );
  }
  return `${parts.map((p) => p.replace(/\s*=\s*/, " = ")).join("\n")}\n`;
}

/** NSH_BENCH_VARIANTS: comma-separated, each known, none twice. */
export function parseVariants(text: string): Variant[] {
  const vs = text.split(",").map((s) => s.trim()).filter(Boolean);
  for (const v of vs) {
    if (!(v in LABEL)) throw new Error(`NSH_BENCH_VARIANTS: expected nsh, pilot, br and/or local, got '${v}'`);
  }
  if (!vs.length || new Set(vs).size !== vs.length) {
    throw new Error(`NSH_BENCH_VARIANTS: expected a list without repeats, got '${text}'`);
  }
  return vs as Variant[];
}

const fmt = (x: number, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : "–");
const counted = (runs: readonly BuildRun[], c: CaseId, v: Variant) =>
  runs.filter((r) => r.caseId === c && r.variant === v && r.round > 0);
const good = (runs: readonly BuildRun[], c: CaseId, v: Variant) => counted(runs, c, v).filter((r) => r.ok);
/** Median wall time of the counted, successful runs; NaN when none. */
export const medianMs = (runs: readonly BuildRun[], c: CaseId, v: Variant): number =>
  median(good(runs, c, v).map((r) => r.ms));
/** Jobs per build of each counted, successful run whose jobs are known. */
export const jobsPerBuild = (runs: readonly BuildRun[], c: CaseId, v: Variant): number[] =>
  good(runs, c, v).flatMap((r) => (r.jobs === undefined ? [] : [r.jobs / r.builds]));

/** Per case and nsh variant: builds, Slurm jobs submitted, jobs per build, next to the wall time. */
export function jobsTable(
  runs: readonly BuildRun[], cases: readonly CaseId[], variants: readonly Variant[], caseLabel: (c: CaseId) => string,
): string {
  const n = (x: number) => (Number.isInteger(x) ? String(x) : fmt(x, 1));
  const range = (xs: number[]) => (xs.length ? `${n(median(xs))} (${n(min(xs))}–${n(max(xs))})` : "–");
  const rows: Array<Array<string | number>> = [];
  for (const c of cases)
    for (const v of variants.filter(isNsh)) {
      const rs = good(runs, c, v);
      if (!rs.length) continue;
      const jobs = rs.flatMap((r) => (r.jobs === undefined ? [] : [r.jobs]));
      const posts = rs.flatMap((r) => (r.submits === undefined ? [] : [r.submits]));
      const per = jobsPerBuild(runs, c, v);
      const ratios = per.length ? `${fmt(median(per), 3)} (${fmt(min(per), 3)}–${fmt(max(per), 3)})` : "–";
      rows.push([
        caseLabel(c), LABEL[v], rs.length, rs[0]!.builds, range(jobs), posts.length ? range(posts) : "– (no proxy in (a))",
        ratios, fmt(median(rs.map((r) => r.ms))),
      ]);
    }
  const head = ["case (counted ok runs)", "variant", "runs", "builds per run",
    "Slurm jobs (distinct job ids in nsh's records): median (min–max)", "submit POSTs through the proxy",
    "jobs / builds", "median wall ms"];
  return table(head, rows);
}

const name = (v: Variant) => (v === "br" ? "build-remote" : v);

/** "pilot / nsh 0.62, pilot / build-remote 0.40, nsh / build-remote 0.65" for the variants that ran. */
export function ratioLine(runs: readonly BuildRun[], c: CaseId, caseLabel: string): string | undefined {
  const m = (v: Variant) => medianMs(runs, c, v);
  const pairs: Array<[Variant, Variant]> = [["pilot", "nsh"], ["pilot", "br"], ["nsh", "br"]];
  const parts = pairs
    .filter(([a, b]) => Number.isFinite(m(a)) && Number.isFinite(m(b)))
    .map(([a, b]) => `${name(a)} / ${name(b)} ${(m(a) / m(b)).toFixed(2)}`);
  if (!parts.length) return undefined;
  const ms = (["pilot", "nsh", "br"] as Variant[]).filter((v) => Number.isFinite(m(v))).map((v) => `${name(v)} ${fmt(m(v))} ms`);
  return `${caseLabel}: ${parts.join(", ")} (ratios of median wall times: ${ms.join(", ")})`;
}

export type Verdict = { pass: boolean | undefined; line: string };

/** The (a) overhead goal as computed by bench/hook.ts: nsh's overhead per build (judged) vs build-remote's. */
export interface OverheadGoal { judgedMs: number; brOverMs: number }

/**
 * Issue 11's goals from the build runs: (b) the best nsh variant ≤ 0.35 × build-remote; pilot jobs per
 * build ≤ 0.1 in every counted run of (b) and pilot faster than nsh; (b2) no failed nsh or pilot run;
 * (a) nsh's overhead beyond Slurm ≤ build-remote's. `pass` undefined: not measured in this run.
 */
export function issue11Verdicts(runs: readonly BuildRun[], one?: OverheadGoal): Verdict[] {
  const out: Verdict[] = [];
  const say = (pass: boolean | undefined, what: string, got: string) =>
    out.push({ pass, line: `${pass === undefined ? "SKIP" : pass ? "PASS" : "FAIL"} ${what}: ${got}` });
  const [nsh, pilot, br] = (["nsh", "pilot", "br"] as const).map((v) => medianMs(runs, "wide", v)) as [
    number, number, number,
  ];
  const best = Math.min(...[nsh, pilot].filter(Number.isFinite));
  const bestOf = best === pilot ? "pilot" : "nsh";
  const goalB = "(b) best nsh variant ≤ 0.35 × build-remote";
  if (Number.isFinite(best) && Number.isFinite(br)) {
    say(best <= 0.35 * br, goalB, `${bestOf} ${fmt(best)} ms = ${(best / br).toFixed(2)} × build-remote's ${fmt(br)} ms`);
  } else say(undefined, goalB, "needs nsh or pilot, and br, in (b)");

  const per = jobsPerBuild(runs, "wide", "pilot");
  const failedPilot = counted(runs, "wide", "pilot").filter((r) => !r.ok).length;
  const failedNote = failedPilot ? `; ${failedPilot} failed run(s)` : "";
  const goalJobs = "(b) pilot Slurm jobs / builds ≤ 0.1 (every counted run)";
  if (per.length) say(max(per) <= 0.1 && !failedPilot, goalJobs, `${per.map((x) => x.toFixed(3)).join(", ")}${failedNote}`);
  else say(undefined, goalJobs, "no successful counted pilot run in (b)");

  const goalFaster = "(b) pilot faster than nsh (one job per build)";
  if (Number.isFinite(pilot) && Number.isFinite(nsh)) say(pilot < nsh, goalFaster, `${fmt(pilot)} vs ${fmt(nsh)} ms (median)`);
  else say(undefined, goalFaster, "needs nsh and pilot in (b)");

  const wider = runs.filter((r) => r.caseId === "wider" && isNsh(r.variant));
  const bad = wider.filter((r) => !r.ok);
  const failures = bad.map((r) => `${r.variant} round ${r.round} (${r.why})`).join("; ");
  if (wider.length) {
    const got = `${wider.length - bad.length} of ${wider.length} nsh/pilot runs ok`;
    say(!bad.length, "(b2) no failure", `${got}${bad.length ? `; failed: ${failures}` : ""}`);
  } else say(undefined, "(b2) no failure", "(b2) not run with nsh or pilot");

  const goalA = "(a) nsh's overhead beyond Slurm ≤ build-remote's overhead";
  if (one && Number.isFinite(one.judgedMs) && Number.isFinite(one.brOverMs)) {
    say(one.judgedMs <= one.brOverMs, goalA, `${fmt(one.judgedMs)} vs ${fmt(one.brOverMs)} ms per build`);
  } else say(undefined, goalA, "needs nsh, br and local in (a)");
  return out;
}
