// Pure parts of the hook benchmark's probe (bench/hook-probe-run.ts samples /proc with them): parsing
// /proc/<pid>/stat and /proc/net/tcp, naming a process's kind, CPU time and starts per kind over a
// run, the peak of summed RSS, and request rates. Table-tested in test/unit/bench-hook-probe.test.ts.

export interface ProcStat {
  pid: number;
  comm: string;
  ppid: number;
  /** user + system CPU in clock ticks */
  ticks: number;
  /** since boot, in clock ticks: with the pid, it names one process across pid reuse */
  start: number;
  rssPages: number;
}

/** One /proc/<pid>/stat line; undefined when it is not one (a process that vanished mid-read). */
export function parseStat(text: string): ProcStat | undefined {
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  if (open < 0 || close < open) return undefined;
  // Fields after the comm, numbered as in proc(5): 3 state, 4 ppid, 14 utime, 15 stime, 22 starttime, 24 rss.
  const f = text.slice(close + 2).trim().split(/\s+/);
  const at = (n: number) => Number(f[n - 3]);
  const s: ProcStat = {
    pid: Number(text.slice(0, open).trim()),
    comm: text.slice(open + 1, close),
    ppid: at(4),
    ticks: at(14) + at(15),
    start: at(22),
    rssPages: at(24),
  };
  return Object.values(s).every((v) => typeof v === "string" || Number.isFinite(v)) ? s : undefined;
}

export interface TcpConn {
  localIp: string;
  localPort: number;
  remoteIp: string;
  remotePort: number;
  /** "01" is ESTABLISHED */
  state: string;
  inode: number;
}

/** IPv4 "0100007F" (little-endian hex, as /proc/net/tcp writes it) → "127.0.0.1"; IPv6 stays hex. */
function hexIp(hex: string): string {
  if (hex.length !== 8) return hex;
  return [6, 4, 2, 0].map((i) => parseInt(hex.slice(i, i + 2), 16)).join(".");
}

/** /proc/net/tcp or tcp6: one entry per socket; the header and malformed lines are skipped. */
export function parseProcNetTcp(text: string): TcpConn[] {
  const out: TcpConn[] = [];
  for (const line of text.split("\n")) {
    const f = line.trim().split(/\s+/);
    const local = /^([0-9A-F]+):([0-9A-F]{4})$/i.exec(f[1] ?? "");
    const remote = /^([0-9A-F]+):([0-9A-F]{4})$/i.exec(f[2] ?? "");
    if (!local || !remote || !/^[0-9A-F]{2}$/i.test(f[3] ?? "") || !/^\d+$/.test(f[9] ?? "")) continue;
    out.push({
      localIp: hexIp(local[1]!), localPort: parseInt(local[2]!, 16),
      remoteIp: hexIp(remote[1]!), remotePort: parseInt(remote[2]!, 16),
      state: f[3]!.toUpperCase(), inode: Number(f[9]),
    });
  }
  return out;
}

/** Established client-side connections to `port`, per remote address: the sshd's side has it as local port. */
export function connectionsTo(conns: readonly TcpConn[], port: number): Map<string, number> {
  const per = new Map<string, number>();
  for (const c of conns) {
    if (c.state !== "01" || c.remotePort !== port) continue;
    per.set(c.remoteIp, (per.get(c.remoteIp) ?? 0) + 1);
  }
  return per;
}

/**
 * What a process is, from its comm, argv and executable. `nshExe` is the benchmarked binary: its
 * processes are the submitting machine's nsh (hook, reaper, …); the agent on the node runs from a copy.
 */
export function processKind(comm: string, argv: readonly string[], exe: string, nshExe: string): string {
  const internal = argv[1]?.startsWith("__") ? argv[1].slice(2) : undefined;
  if (exe === nshExe) {
    if (internal) return `nsh ${internal}`;
    return argv[1] === undefined || argv[1] === "hook" || /^\d+$/.test(argv[1]) ? "nsh hook" : `nsh ${argv[1]}`;
  }
  if (internal === "agent" || internal === "agent-connect") return `nsh ${internal} (node)`;
  if (comm === "nix-store" && argv.includes("--serve")) return "nix-store --serve";
  return comm;
}

/** The submitting machine's nsh processes (not the agent on the node, which is the cluster's). */
export const isSubmitNsh = (kind: string): boolean => kind.startsWith("nsh ") && !kind.endsWith("(node)");

export interface KindTotals {
  /** CPU seconds spent during the run */
  cpuS: number;
  /** processes born during the run */
  started: number;
}

/**
 * CPU time and starts per kind over a run, from periodic samples. A process seen in the first sample
 * counts from its ticks then; one born later counts from zero. A process is counted under the kind it
 * had when last seen (a forked child that execs ssh becomes ssh). CPU a process spends after its last
 * sample is lost: the sampling interval bounds that.
 */
export class CpuLedger {
  private readonly seen = new Map<string, { kind: string; base: number; last: number; born: boolean }>();
  private first = true;

  constructor(private readonly ticksPerS: number) {}

  /** One sample: every process in scope, keyed by pid and start time. */
  observe(procs: ReadonlyArray<{ key: string; kind: string; ticks: number }>): void {
    for (const p of procs) {
      const had = this.seen.get(p.key);
      if (had) {
        had.kind = p.kind;
        had.last = p.ticks;
      } else this.seen.set(p.key, { kind: p.kind, base: this.first ? p.ticks : 0, last: p.ticks, born: !this.first });
    }
    this.first = false;
  }

  totals(): Map<string, KindTotals> {
    const out = new Map<string, KindTotals>();
    for (const p of this.seen.values()) {
      const t = out.get(p.kind) ?? { cpuS: 0, started: 0 };
      t.cpuS += (p.last - p.base) / this.ticksPerS;
      if (p.born) t.started++;
      out.set(p.kind, t);
    }
    return out;
  }
}

/** The sum of the RSS of the processes `pick` selects, in bytes. */
export function summedRss(
  procs: ReadonlyArray<{ kind: string; rssPages: number }>, pageBytes: number, pick: (kind: string) => boolean,
): number {
  return procs.reduce((s, p) => (pick(p.kind) ? s + p.rssPages * pageBytes : s), 0);
}

export interface Rate {
  count: number;
  /** requests per second over [fromMs, toMs] */
  meanPerS: number;
  /** the most requests in any 1-second window */
  peakPerS: number;
}

/** Request rate over a run from the requests' time stamps (ms). */
export function requestRate(times: readonly number[], fromMs: number, toMs: number): Rate {
  const t = [...times].sort((a, b) => a - b);
  let peak = 0;
  for (let i = 0, j = 0; j < t.length; j++) {
    while (t[j]! - t[i]! >= 1000) i++;
    peak = Math.max(peak, j - i + 1);
  }
  const spanS = (toMs - fromMs) / 1000;
  return { count: t.length, meanPerS: spanS > 0 ? t.length / spanS : Number.NaN, peakPerS: peak };
}
