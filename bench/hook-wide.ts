// Tables of the hook benchmark's probed wide runs (bench/hook-probe-run.ts): for each case and
// variant, the peak summed RSS of nsh's processes, the most ssh connections to one host, the
// scheduler requests per second, and the CPU time and process starts per process kind.
import type { ProbeSummary } from "./hook-probe-run.ts";
import { fmtBytes, max, median, table } from "./lib.ts";

export interface ProbeRun {
  caseId: string;
  variant: string;
  round: number;
  ok: boolean;
  /** builds in the run (derivations + aggregate) */
  builds: number;
  summary: ProbeSummary;
}

const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : "–");

/** CPU seconds per kind summed over `runs`, divided by the number of runs; with starts per build. */
export function cpuPerKind(runs: readonly ProbeRun[]): Array<{ kind: string; cpuS: number; startedPerBuild: number }> {
  const totals = new Map<string, { cpuS: number; started: number }>();
  for (const r of runs)
    for (const [kind, t] of Object.entries(r.summary.perKind)) {
      const had = totals.get(kind) ?? { cpuS: 0, started: 0 };
      totals.set(kind, { cpuS: had.cpuS + t.cpuS, started: had.started + t.started });
    }
  const builds = runs.reduce((s, r) => s + r.builds, 0);
  return [...totals.entries()]
    .map(([kind, t]) => ({
      kind, cpuS: t.cpuS / runs.length, startedPerBuild: builds ? t.started / builds : Number.NaN,
    }))
    .sort((a, b) => b.cpuS - a.cpuS);
}

export function probeTables(
  runs: readonly ProbeRun[], caseLabel: (c: never) => string, label: Record<string, string>,
): string[] {
  if (!runs.length) return [];
  const groups = new Map<string, ProbeRun[]>();
  for (const r of runs) {
    const key = `${r.caseId}\t${r.variant}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const name = (key: string) => {
    const [c, v] = key.split("\t") as [string, string];
    return `${caseLabel(c as never)}, ${label[v] ?? v}`;
  };
  const rows = [...groups.entries()].map(([key, rs]) => {
    const s = rs.map((r) => r.summary);
    const req = (pick: (x: ProbeSummary) => number) => f(max(s.map(pick)));
    const reqMean = (pick: (x: ProbeSummary) => number) => f(median(s.map(pick)), 2);
    return [
      name(key), `${rs.filter((r) => r.ok).length} / ${rs.length}`,
      fmtBytes(max(s.map((x) => x.peakNshRssBytes))), fmtBytes(max(s.map((x) => x.peakAgentRssBytes))),
      max(s.map((x) => x.maxSshConns)),
      `${median(s.map((x) => x.requests.all.count))}`,
      `${req((x) => x.requests.all.peakPerS)} / ${reqMean((x) => x.requests.all.meanPerS)}`,
      `${req((x) => x.requests.submit.peakPerS)} / ${req((x) => x.requests.status.peakPerS)}`,
      f(median(s.map((x) => x.benchCpuS)), 2),
      `${median(s.map((x) => x.samples))} in ${f(median(s.map((x) => x.seconds)))} s`,
    ];
  });
  const head = ["probed runs (counted rounds)", "ok", "peak summed RSS of nsh's processes (submit side)",
    "peak summed RSS of the node's agents", "most ssh connections to one host at once",
    "scheduler requests per run (median)", "requests/s peak (any 1 s) / mean (median)",
    "submits/s peak / status queries/s peak", "bench process CPU s (sampler + proxy)",
    "/proc samples"];
  const out = [table(head, rows)];
  const cpuRows: Array<Array<string | number>> = [];
  for (const [key, rs] of groups) {
    const kinds = cpuPerKind(rs);
    const total = kinds.reduce((s, k) => s + k.cpuS, 0);
    for (const k of kinds.filter((k) => k.cpuS >= 0.05 || k.startedPerBuild > 0).slice(0, 14))
      cpuRows.push([name(key), k.kind, f(k.cpuS, 2), `${f((100 * k.cpuS) / total, 0)} %`, f(k.startedPerBuild, 2)]);
    cpuRows.push([name(key), "**all of the lab's processes**", f(total, 2), "100 %", "–"]);
  }
  const cpuHead = ["CPU by process kind (lab processes only)", "kind", "CPU s per run", "share",
    "processes started per build"];
  out.push(table(cpuHead, cpuRows));
  return out;
}
