// The pure parts of bench/schedulers.ts that shape a run and its report: the nix-build command, the
// output a build must leave, and the three tables (wall time, submit → running, scheduler calls).
import { median, max, min, table } from "./lib.ts";
import {
  COUNTED_AT, type CallCounts, fmtCalls, isPbs, type RecordLite, recordsOfRun, type SchedBackend, submitToRunning,
} from "./schedulers-calls.ts";

export type CaseId = "one" | "wide";

export interface Run {
  backend: SchedBackend;
  caseId: CaseId;
  /** 0 = warm-up */
  round: number;
  salt: string;
  ms: number;
  ok: boolean;
  why?: string;
  load1: number;
  calls: CallCounts;
}

/** nix-build of (a) one derivation or (b) `width` leaves plus their aggregate, with `hook` as build hook. */
export function buildArgv(workload: string, c: CaseId, salt: string, width: number, hook: string): string[] {
  return [
    "nix-build", "--store", "daemon", "--no-out-link", workload, "-A", c === "one" ? "one" : "all",
    "--argstr", "salt", salt, "--arg", "n", String(width), "--option", "build-hook", hook, "-j", "16",
  ];
}

/** What the build's output holds (bench/expr/hook.nix): "one <salt>", or the sum 0 + … + (width − 1). */
export const expectedOutput = (c: CaseId, salt: string, width: number): string =>
  c === "one" ? `one ${salt}` : String((width * (width - 1)) / 2);

/** NSH_BENCH_CASES: one and/or wide. */
export function parseCases(text: string): CaseId[] {
  const cases = text.split(",").map((s) => s.trim()).filter(Boolean);
  for (const c of cases) {
    if (c !== "one" && c !== "wide") throw new Error(`NSH_BENCH_CASES: expected one and/or wide, got '${c}'`);
  }
  return cases as CaseId[];
}

/** Rounds rotate the order of the backends: round 1 starts with the first, round 2 with the second, … */
export const rotate = <T>(xs: readonly T[], k: number): T[] => [...xs.slice(k % xs.length), ...xs.slice(0, k % xs.length)];

const fmt = (x: number): string => (Number.isFinite(x) ? x.toFixed(0) : "–");
const p90 = (xs: readonly number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(0.9 * xs.length))] ?? Number.NaN;
const spread = (xs: readonly number[]): string =>
  xs.length ? `${fmt(median(xs))} (${fmt(min(xs))}–${fmt(max(xs))})` : "–";

export interface ReportInput {
  backends: readonly SchedBackend[];
  cases: readonly CaseId[];
  width: number;
  runs: readonly Run[];
  records: readonly RecordLite[];
  /** slurmctld's submit RPC and allocation times per job id (Slurm backends only) */
  ctld?: { submitAt: Map<string, number>; allocAt: Map<string, number> };
}

/** The three markdown tables; counted runs only (round > 0), failed runs left out of the numbers. */
export function reportTables(i: ReportInput): string[] {
  const shown = (["one", "wide"] as CaseId[]).filter((c) => i.cases.includes(c));
  const counted = (b: SchedBackend, c: CaseId) => i.runs.filter((r) => r.backend === b && r.caseId === c && r.round > 0);
  const good = (b: SchedBackend, c: CaseId) => counted(b, c).filter((r) => r.ok);
  const label = (c: CaseId) => (c === "one" ? "1 build" : `${i.width} + aggregate`);
  const first = i.backends[0]!;

  const wallRows = i.backends.map((b) => [b, ...shown.flatMap((c) => {
    const ms = good(b, c).map((r) => r.ms);
    const ratio = median(ms) / median(good(first, c).map((r) => r.ms));
    return [`${ms.length} / ${counted(b, c).length}`, spread(ms), Number.isFinite(ratio) ? ratio.toFixed(2) : "–"];
  })]);
  const wallHead = shown.flatMap((c) => [`${label(c)}: ok runs`, "wall ms median (min–max)", `÷ ${first}`]);

  const latencyRows = i.backends.map((b) => [b, ...shown.flatMap((c) => {
    const recs = good(b, c).flatMap((r) => recordsOfRun(i.records, r.salt));
    const seen = submitToRunning(recs);
    const ctld = i.ctld && !isPbs(b) ? i.ctld : undefined;
    const sched = ctld ? recs.flatMap((j) => {
      const [s, a] = [ctld.submitAt.get(j.jobId ?? ""), ctld.allocAt.get(j.jobId ?? "")];
      return s !== undefined && a !== undefined ? [a - s] : [];
    }) : [];
    return [String(seen.length), spread(seen), fmt(p90(seen)), spread(sched)];
  })]);
  const latencyHead = shown.flatMap((c) => [
    `${label(c)}: jobs`, "submit → nsh sees it running ms, median (min–max)", "p90",
    "slurmctld: submit RPC → allocation ms",
  ]);

  const callRows = i.backends.map((b) => [b, COUNTED_AT[b], ...shown.flatMap((c) => {
    const rs = good(b, c);
    if (rs.length === 0) return ["–", "–"];
    const m = (k: keyof CallCounts) => median(rs.map((r) => r.calls[k]));
    const calls = { submit: m("submit"), status: m("status"), cancel: m("cancel"), other: m("other") };
    return [fmtCalls(calls), (calls.status / (c === "one" ? 1 : i.width + 1)).toFixed(1)];
  })]);
  const callHead = shown.flatMap((c) => [
    `${label(c)}: calls per run, submit / status / cancel / other (median)`, "status calls per build",
  ]);

  return [
    table(["backend", ...wallHead], wallRows),
    table(["backend", ...latencyHead], latencyRows),
    table(["backend", "counted at", ...callHead], callRows),
  ];
}
