// memory: K memory-hungry evaluations at once inside one memory cgroup with swap, as plain nix and
// through nix-sigstop. Each evaluation (bench/expr/mem2.nix) holds a list of about 0.5 GB while it
// waits for its first import-from-derivation build, then builds a second, larger list and waits for
// a second build. The lab's nix-daemon and the builds run outside the cgroup; only the clients (and
// nix-sigstop's wrapper and proxy) are inside. Counts completed and OOM-killed evaluations.
import fs from "node:fs";
import path from "node:path";
import { startNixLab } from "../test/lab/nix.ts";
import { createMemCgroup, ensureSwap, memoryCgroupVersion, type CgroupCounters, type MemCgroup } from "./cgroup.ts";
import { EXPR, sigstopBin, envNumber, envSize, envString, fmtBytes, onCleanup, readJson, salt, table, tail, timed, type Bench, type BenchResult, type Outcome } from "./lib.ts";

interface Settings {
  k: number;
  listSize: number;
  growth: number;
  sleep: number;
  limit: number;
  memsw?: number;
  swapFile: number;
  fastPath?: string;
  timeoutMs: number;
  variants: Variant[];
  rounds: number;
}

/** plain, or nix-sigstop with its resumption options: "sigstop:<margin>:<max-wait seconds>". */
interface Variant {
  id: string;
  label: string;
  margin?: string;
  maxWait?: number;
}

const DEFAULT_VARIANTS = "plain,sigstop:768M";

function parseVariant(token: string): Variant {
  if (token === "plain") return { id: "plain", label: "plain nix" };
  const m = /^sigstop(?::([0-9.]+[KMGT]?))?(?::(\d+))?$/i.exec(token);
  if (!m) throw new Error(`NSH_BENCH_VARIANTS: expected plain or sigstop[:MARGIN[:MAX_WAIT]], got '${token}'`);
  const margin = m[1] ?? "256M";
  const maxWait = Number(m[2] ?? 600);
  return { id: token.replace(/[^A-Za-z0-9]/g, "_"), label: `nix-sigstop (margin ${margin}, max-wait ${maxWait} s)`, margin, maxWait };
}

function settings(): Settings {
  const memsw = envString("NSH_BENCH_MEMSW", "3.6G");
  return {
    k: envNumber("NSH_BENCH_K", 4),
    listSize: envNumber("NSH_BENCH_LIST", 4_500_000),
    growth: envNumber("NSH_BENCH_GROWTH", 2),
    sleep: envNumber("NSH_BENCH_SLEEP", 5),
    limit: envSize("NSH_BENCH_LIMIT", "1.75G"),
    memsw: memsw === "none" ? undefined : envSize("NSH_BENCH_MEMSW", memsw),
    swapFile: envSize("NSH_BENCH_SWAP", "6G"),
    fastPath: process.env.NSH_BENCH_FAST_PATH || undefined,
    timeoutMs: envNumber("NSH_BENCH_TIMEOUT", 600) * 1000,
    variants: envString("NSH_BENCH_VARIANTS", DEFAULT_VARIANTS).split(",").map(parseVariant),
    rounds: envNumber("NSH_BENCH_ROUNDS", 1),
  };
}

/** What mem2.nix evaluates to: sum1 + sum2 + 42 + 42 + last big1 + last big2. */
function expected(n: number, growth: number): string {
  const N = BigInt(n);
  const M = BigInt(n * growth);
  return String(N * (N - 1n) + (3n * M * (M - 1n)) / 2n + 84n + 2n * (N - 1n) + 3n * (M - 1n));
}

interface VariantResult {
  variant: Variant;
  round: number;
  completed: number;
  oomKilled: number;
  otherFailures: number;
  wallSeconds: number;
  runs: Array<{ code: number | null; signal: string | null; seconds: number; timedOut: boolean; ok: boolean; stderr: string; report?: Record<string, unknown> }>;
  counters: CgroupCounters;
  /** [seconds since start, RAM MiB, RAM+swap MiB, nix clients running, nix clients stopped] every 0.5 s */
  timeline: number[][];
}

/** Samples the cgroup: memory, and how many nix clients in it are running or stopped. */
function sampler(cg: MemCgroup, t0: number): { timeline: number[][]; stop(): void } {
  const timeline: number[][] = [];
  const timer = setInterval(() => {
    let running = 0;
    let stopped = 0;
    for (const pid of fs.readFileSync(path.join(cg.dir, "cgroup.procs"), "utf8").split("\n").filter(Boolean)) {
      try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
        if (!stat.includes("(nix)")) continue;
        const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
        if (state === "T") stopped++;
        else if (state !== "Z") running++;
      } catch {}
    }
    const u = cg.usage();
    timeline.push([(performance.now() - t0) / 1000, u.ram / 2 ** 20, (u.swapOrMemsw ?? 0) / 2 ** 20, running, stopped].map((x) => Math.round(x * 10) / 10));
  }, 500);
  return { timeline, stop: () => clearInterval(timer) };
}

export const memory: Bench = {
  name: "memory",
  title: "K memory-hungry IFD evaluations in one memory cgroup with swap: plain nix vs nix-sigstop",
  async run(): Promise<BenchResult> {
    const s = settings();
    if (process.getuid?.() !== 0) throw new Error("the memory benchmark needs root (memory cgroup, swap file)");
    const version = memoryCgroupVersion();
    if (version === undefined) throw new Error("no memory cgroup controller under /sys/fs/cgroup");
    const want = expected(s.listSize, s.growth);
    const swapNeed = Math.max(s.swapFile, (s.memsw ?? 0) - s.limit + 2 ** 30);
    const swap = ensureSwap(swapNeed);
    const dropSwap = onCleanup(() => swap.teardown());
    process.stderr.write(`  ${swap.note}\n`);
    // max-jobs: the K builds of each stage run side by side in the daemon, as on a build farm.
    const lab = await startNixLab({ daemon: true, name: "bench-mem", extraConf: `max-jobs = ${Math.max(4, 2 * s.k)}` });
    const results: VariantResult[] = [];
    try {
      const shared = path.join(lab.root, "shared");
      const sigstopOpts = (v: Variant) => ["--shared-dir", shared, "--resume-margin", v.margin!, "--resume-max-wait", String(v.maxWait), ...(s.fastPath ? ["--resume-fast-path", s.fastPath] : [])];
      const evalArgs = (x: string) => ["eval", "--store", "daemon", "--impure", "--json", "--expr",
        `import ${path.join(EXPR, "mem2.nix")} { salt = "${x}"; sleep = "${s.sleep}"; listSize = ${s.listSize}; growth = ${s.growth}; }`];
      // Rounds alternate the order, so neither variant always runs on a fresher machine.
      const plan = Array.from({ length: s.rounds }, (_, r) => (r % 2 === 0 ? s.variants : [...s.variants].reverse()).map((v) => [r + 1, v] as const)).flat();
      for (const [round, variant] of plan) {
        const argv = (x: string, rep: string): string[] =>
          variant.id === "plain" ? ["nix", ...evalArgs(x)] : [sigstopBin(), "--verbose", ...sigstopOpts(variant), "--report", rep, ...evalArgs(x)];
        const cg = createMemCgroup(`nsh-bench-${process.pid}-${variant.id}-${round}`, s.limit, s.memsw);
        const dropCg = onCleanup(() => cg.remove());
        try {
          process.stderr.write(`  round ${round}, ${variant.label}: ${s.k} evaluations in ${cg.dir}\n`);
          const t0 = performance.now();
          const sample = sampler(cg, t0);
          const outcomes = await Promise.all(
            Array.from({ length: s.k }, async (_, i): Promise<[Outcome, string]> => {
              const rep = path.join(lab.root, `report-${variant.id}-${round}-${i}.json`);
              const o = await timed(cg.wrap(argv(`${salt()}${i}`, rep)), lab.env, { timeoutMs: s.timeoutMs, cwd: lab.root });
              process.stderr.write(`    ${variant.id} #${i}: exit ${o.code ?? o.signal} after ${(o.ms / 1000).toFixed(1)} s\n`);
              return [o, rep];
            }),
          );
          const wallSeconds = (performance.now() - t0) / 1000;
          sample.stop();
          const runs = outcomes.map(([o, rep]) => ({
            code: o.code,
            signal: o.signal,
            seconds: Math.round(o.ms) / 1000,
            timedOut: o.timedOut,
            ok: o.code === 0 && o.stdout.trim() === want,
            stderr: tail(o.stderr, 3000),
            report: variant.id === "plain" ? undefined : readJson(rep),
          }));
          const killed = (r: (typeof runs)[number]) => !r.timedOut && (r.signal === "SIGKILL" || r.code === 137);
          results.push({
            variant,
            round,
            completed: runs.filter((r) => r.ok).length,
            oomKilled: runs.filter(killed).length,
            otherFailures: runs.filter((r) => !r.ok && !killed(r)).length,
            wallSeconds,
            runs,
            counters: cg.counters(),
            timeline: sample.timeline,
          });
        } finally {
          dropCg();
        }
      }
    } finally {
      await lab.cleanup();
      dropSwap();
    }
    return report(s, version, swap.note, results);
  },
};

function report(s: Settings, version: 1 | 2, swapNote: string, results: VariantResult[]): BenchResult {
  const name = (r: VariantResult) => `${r.variant.label}${s.rounds > 1 ? `, round ${r.round}` : ""}`;
  const sum = (r: VariantResult, key: string) => r.runs.reduce((n, x) => n + Number(x.report?.[key] ?? 0), 0);
  const maxOf = (r: VariantResult, key: string) => Math.max(0, ...r.runs.map((x) => Number(x.report?.[key] ?? 0)));
  const rows = results.map((r) => [
    name(r),
    `${r.completed} / ${s.k}`,
    r.oomKilled,
    r.otherFailures,
    r.wallSeconds.toFixed(1),
    fmtBytes(r.counters.peakBytes),
    fmtBytes(r.counters.peakMemswBytes),
    r.counters.oomKills,
    r.counters.failcnt,
  ]);
  const tables = [
    table(["variant", "completed", "OOM-killed", "other failures", "wall s", "peak RAM", "peak RAM+swap", "kernel OOM kills", "limit hits (failcnt)"], rows),
  ];
  const sig = results.filter((r) => r.variant.id !== "plain");
  if (sig.length > 0) {
    tables.push(
      table(
        ["nix-sigstop, summed over its K runs", ...sig.map((r) => name(r))],
        [
          ["times nix was stopped", ...sig.map((r) => sum(r, "stops"))],
          ["seconds stopped", ...sig.map((r) => sum(r, "stoppedSeconds").toFixed(1))],
          ["seconds waited for memory to resume", ...sig.map((r) => sum(r, "resumeWaitSeconds").toFixed(1))],
          ["longest single wait to resume, s", ...sig.map((r) => maxOf(r, "resumeWaitSeconds").toFixed(1))],
          ["most one nix had in swap while stopped", ...sig.map((r) => fmtBytes(maxOf(r, "peakSwapBytesWhileStopped")))],
        ],
      ),
    );
  }
  const plain = results.filter((r) => r.variant.id === "plain");
  const notes = [
    `Setup: K = ${s.k} concurrent \`nix eval --store daemon --impure --expr 'import bench/expr/mem2.nix { listSize = ${s.listSize}; growth = ${s.growth}; sleep = "${s.sleep}"; … }'\` (two IFD builds of ${s.sleep} s each), cgroup v${version} with a RAM limit of ${fmtBytes(s.limit)}${s.memsw ? ` and a RAM+swap limit of ${fmtBytes(s.memsw)}` : " and no RAM+swap limit"}; ${swapNote}; the lab's nix-daemon and the builds run outside the cgroup.`,
    `nix-sigstop runs with --verbose --shared-dir <lab>/shared${s.fastPath ? ` --resume-fast-path ${s.fastPath}` : ""} and the --resume-margin and --resume-max-wait shown.`,
  ];
  if (plain.length > 0 && sig.length > 0) {
    const k = Math.max(...plain.map((r) => r.completed));
    for (const label of [...new Set(sig.map((r) => r.variant.label))]) {
      const worst = Math.min(...sig.filter((r) => r.variant.label === label).map((r) => r.completed));
      const met = k < s.k && worst >= 2 * k;
      notes.push(`Goal: plain nix completed at most k = ${k} of ${s.k}; nix-sigstop should complete at least 2k = ${2 * k}. ${label}: ${worst}${s.rounds > 1 ? " in its worst round" : ""}, goal ${met ? "met" : "not met"}.`);
    }
  }
  return { tables, notes, data: { settings: s, cgroupVersion: version, swap: swapNote, expected: expected(s.listSize, s.growth), results } };
}
