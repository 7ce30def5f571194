// The hook benchmark's probe: while one nix-build runs, samples /proc every `intervalMs` for the
// lab's processes (descendants of its daemons: nix-daemon, sshd, slurmctld, slurmd, slurmrestd, and
// anything running the benchmarked nsh) and /proc/net/tcp for connections to the lab's sshd port
// (private to this lab, so every one is the lab's). Counts REST requests through bench/schedulers.ts's
// counting proxy in front of slurmrestd. The pure parts are in bench/hook-probe.ts.
import fs from "node:fs";
import { spawnSync } from "node:child_process";
import { countingProxy } from "./schedulers.ts";
import type { CallKind } from "./schedulers-calls.ts";
import {
  connectionsTo, CpuLedger, isSubmitNsh, parseProcNetTcp, parseStat, processKind, requestRate, summedRss,
  type KindTotals, type ProcStat, type Rate,
} from "./hook-probe.ts";

const TICKS = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout?.trim()) || 100;
const PAGE = Number(spawnSync("getconf", ["PAGESIZE"], { encoding: "utf8" }).stdout?.trim()) || 4096;

export interface ProbeSummary {
  samples: number;
  seconds: number;
  /** the peak of the summed RSS of the submitting machine's nsh processes, and of the node's agents */
  peakNshRssBytes: number;
  peakAgentRssBytes: number;
  /** the most established connections to the sshd's port at once, from one remote address */
  maxSshConns: number;
  perKind: Record<string, KindTotals>;
  /** the benchmark process itself (sampler and proxy), CPU s */
  benchCpuS: number;
  requests: Record<CallKind | "all", Rate>;
}

export interface Probe {
  stop(): ProbeSummary;
}

const read = (file: string): string | undefined => {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
};

/** Starts sampling now; `stop` ends it and summarises. `requests` is the proxy's log of (time, kind). */
export function startProbe(o: {
  nshExe: string; roots: number[]; sshPort: number; requests: Array<{ t: number; kind: CallKind }>; intervalMs?: number;
  /** slurmstepd detaches from slurmd: one whose environment holds this (the lab's slurm.conf) is the lab's */
  stepdMarker: string;
}): Probe {
  const ledger = new CpuLedger(TICKS);
  const kinds = new Map<string, { comm: string; kind: string }>();
  const ours = new Set<string>();
  const t0 = Date.now();
  const cpu0 = process.cpuUsage();
  const firstRequest = o.requests.length;
  let samples = 0;
  let peakNsh = 0;
  let peakAgent = 0;
  let maxConns = 0;

  const exes = new Map<string, string>();
  const exeOf = (s: ProcStat): string => {
    const key = `${s.pid}:${s.start}:${s.comm}`;
    let exe = exes.get(key);
    if (exe === undefined) {
      try {
        exe = fs.readlinkSync(`/proc/${s.pid}/exe`);
      } catch {
        exe = "";
      }
      exes.set(key, exe);
    }
    return exe;
  };
  const stepds = new Map<string, boolean>();
  const labStepd = (s: ProcStat): boolean => {
    if (s.comm !== "slurmstepd") return false;
    const key = `${s.pid}:${s.start}`;
    if (!stepds.has(key)) stepds.set(key, (read(`/proc/${s.pid}/environ`) ?? "").includes(o.stepdMarker));
    return stepds.get(key)!;
  };
  const kindOf = (s: ProcStat, key: string): string => {
    const had = kinds.get(key);
    if (had && had.comm === s.comm) return had.kind;
    const argv = (read(`/proc/${s.pid}/cmdline`) ?? "").split("\0").filter(Boolean);
    const kind = processKind(s.comm, argv, exeOf(s), o.nshExe);
    kinds.set(key, { comm: s.comm, kind });
    return kind;
  };

  const sample = () => {
    const stats: ProcStat[] = [];
    for (const name of fs.readdirSync("/proc")) {
      if (name.charCodeAt(0) > 57) continue; // not a pid
      const s = parseStat(read(`/proc/${name}/stat`) ?? "");
      if (s) stats.push(s);
    }
    const children = new Map<number, ProcStat[]>();
    for (const s of stats) children.set(s.ppid, [...(children.get(s.ppid) ?? []), s]);
    const keyOf = (s: ProcStat) => `${s.pid}:${s.start}`;
    const todo = stats.filter((s) => o.roots.includes(s.pid) || labStepd(s));
    const inScope = new Map<string, ProcStat>();
    while (todo.length) {
      const s = todo.pop()!;
      if (inScope.has(keyOf(s))) continue;
      inScope.set(keyOf(s), s);
      todo.push(...(children.get(s.pid) ?? []));
    }
    // Reparented ones stay ours (a detached reaper), and the benchmarked binary is always ours.
    for (const s of stats) {
      if (ours.has(keyOf(s)) || (s.comm === "nsh" && exeOf(s) === o.nshExe)) inScope.set(keyOf(s), s);
    }
    const procs = [...inScope.entries()].map(([key, s]) => {
      ours.add(key);
      return { key, kind: kindOf(s, key), ticks: s.ticks, rssPages: s.rssPages };
    });
    ledger.observe(procs);
    peakNsh = Math.max(peakNsh, summedRss(procs, PAGE, isSubmitNsh));
    peakAgent = Math.max(peakAgent, summedRss(procs, PAGE, (k) => k.endsWith("(node)")));
    const conns = parseProcNetTcp((read("/proc/net/tcp") ?? "") + (read("/proc/net/tcp6") ?? ""));
    maxConns = Math.max(maxConns, ...connectionsTo(conns, o.sshPort).values(), 0);
    samples++;
  };
  sample();
  const timer = setInterval(sample, o.intervalMs ?? 100);
  return {
    stop() {
      clearInterval(timer);
      sample();
      const t1 = Date.now();
      const cpu = process.cpuUsage(cpu0);
      const reqs = o.requests.slice(firstRequest);
      const rate = (k?: CallKind) => requestRate(reqs.filter((r) => !k || r.kind === k).map((r) => r.t), t0, t1);
      return {
        samples,
        seconds: (t1 - t0) / 1000,
        peakNshRssBytes: peakNsh,
        peakAgentRssBytes: peakAgent,
        maxSshConns: maxConns,
        perKind: Object.fromEntries(ledger.totals()),
        benchCpuS: (cpu.user + cpu.system) / 1e6,
        requests: {
          all: rate(), submit: rate("submit"), status: rate("status"), cancel: rate("cancel"), other: rate("other"),
        },
      };
    },
  };
}

/** The counting proxy in front of the lab's slurmrestd: its port goes into nsh.conf as slurm-api-port. */
export function startRequestLog(
  restUrl: string,
): { port: number; log: Array<{ t: number; kind: CallKind }>; stop(): void } {
  const log: Array<{ t: number; kind: CallKind }> = [];
  const server = countingProxy(restUrl, (kind) => log.push({ t: Date.now(), kind }));
  server.unref(); // the benchmark exits when it is done, proxy or not
  return { port: server.port ?? 0, log, stop: () => server.stop(true) };
}
