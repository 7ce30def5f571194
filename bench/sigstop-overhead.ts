// overhead: what nix-sigstop costs an evaluation that never waits for a build. The same IFD-free
// evaluation, which instantiates thousands of derivations (so the client talks to the daemon a lot,
// every message through nix-sigstop's proxy), runs as plain nix and through nix-sigstop, alternating
// run by run (ABBA order) on one lab daemon. Reports median wall times and their ratio. A second,
// smaller workload (no derivations at all) shows the fixed cost of starting the wrapper and proxy.
import path from "node:path";
import { startNixLab } from "../test/lab/nix.ts";
import { EXPR, sigstopBin, envNumber, max, median, min, readJson, salt, table, tail, timed, type Bench, type BenchResult } from "./lib.ts";

const GOAL = 1.03;

type Variant = "plain" | "sigstop";

interface Series {
  drvs: number;
  ms: Record<Variant, number[]>;
  pairRatios: number[];
  reports: Record<string, unknown>[];
}

export const overhead: Bench = {
  name: "overhead",
  title: "nix-sigstop overhead on an IFD-free evaluation with heavy daemon traffic",
  async run(): Promise<BenchResult> {
    const drvs = envNumber("NSH_BENCH_DRVS", 4000);
    const pairs = envNumber("NSH_BENCH_PAIRS", 10);
    const timeoutMs = envNumber("NSH_BENCH_TIMEOUT", 300) * 1000;
    const lab = await startNixLab({ daemon: true, name: "bench-ovh" });
    try {
      const shared = path.join(lab.root, "shared");
      const evalArgs = (s: string, n: number) => ["eval", "--store", "daemon", "--impure", "--json", "--expr", `import ${path.join(EXPR, "drvs.nix")} { salt = "${s}"; n = ${n}; }`];
      const argv = (v: Variant, s: string, n: number) =>
        v === "plain" ? ["nix", ...evalArgs(s, n)] : [sigstopBin(), "--quiet", "--shared-dir", shared, "--report", path.join(lab.root, `report-${s}.json`), ...evalArgs(s, n)];

      const once = async (v: Variant, n: number, reports?: Record<string, unknown>[]): Promise<number> => {
        // Salts of one length: every run writes the same number of .drv bytes.
        const s = salt().padEnd(14, "0").slice(0, 14);
        const o = await timed(argv(v, s, n), lab.env, { timeoutMs, cwd: lab.root });
        if (o.code !== 0 || !/^\d+\s*$/.test(o.stdout)) {
          throw new Error(`${v} run failed (exit ${o.code}, signal ${o.signal}${o.timedOut ? ", timed out" : ""}):\n${tail(o.stderr)}`);
        }
        if (v === "sigstop" && reports) reports.push(readJson(path.join(lab.root, `report-${s}.json`)) ?? {});
        return o.ms;
      };

      const series = async (n: number): Promise<Series> => {
        // Warm-up, not counted: page cache, the daemon's first connections, the store's database.
        await once("plain", n);
        await once("sigstop", n);
        const out: Series = { drvs: n, ms: { plain: [], sigstop: [] }, pairRatios: [], reports: [] };
        for (let i = 0; i < pairs; i++) {
          const order: Variant[] = i % 2 === 0 ? ["plain", "sigstop"] : ["sigstop", "plain"];
          const got: Partial<Record<Variant, number>> = {};
          for (const v of order) got[v] = await once(v, n, out.reports);
          out.ms.plain.push(got.plain!);
          out.ms.sigstop.push(got.sigstop!);
          out.pairRatios.push(got.sigstop! / got.plain!);
          process.stderr.write(`  ${n} drvs, pair ${i + 1}/${pairs}: plain ${got.plain!.toFixed(0)} ms, nix-sigstop ${got.sigstop!.toFixed(0)} ms\n`);
        }
        return out;
      };

      const heavy = await series(drvs);
      const empty = await series(0);
      const ratio = (x: Series) => median(x.ms.sigstop) / median(x.ms.plain);
      const row = (x: Series, v: Variant) => {
        const xs = x.ms[v];
        return [x.drvs, v === "plain" ? "plain nix" : "nix-sigstop", xs.length, min(xs).toFixed(0), median(xs).toFixed(0), max(xs).toFixed(0)];
      };
      const ratioRow = (x: Series, goal: boolean) => [
        x.drvs,
        ratio(x).toFixed(3),
        median(x.pairRatios).toFixed(3),
        `${min(x.pairRatios).toFixed(3)} – ${max(x.pairRatios).toFixed(3)}`,
        (median(x.ms.sigstop) - median(x.ms.plain)).toFixed(0),
        goal ? `≤ ${GOAL}: ${ratio(heavy) <= GOAL ? "met" : "not met"}` : "(fixed cost only)",
      ];
      const tables = [
        table(["derivations", "variant", "runs", "min ms", "median ms", "max ms"], [row(heavy, "plain"), row(heavy, "sigstop"), row(empty, "plain"), row(empty, "sigstop")]),
        table(
          ["derivations", "ratio of medians", "median per-pair ratio", "per-pair range", "median difference ms", "goal"],
          [ratioRow(heavy, true), ratioRow(empty, false)],
        ),
      ];
      const perDrvUs = ((median(heavy.ms.sigstop) - median(heavy.ms.plain) - (median(empty.ms.sigstop) - median(empty.ms.plain))) * 1000) / drvs;
      const stops = [...heavy.reports, ...empty.reports].reduce((n, r) => n + Number(r.stops ?? 0), 0);
      const proxies = heavy.reports.map((r) => r.proxy as { mode?: string; bytesToClient?: number } | undefined);
      const modes = [...new Set(proxies.map((p) => p?.mode ?? "unknown"))].join(", ");
      const proxyBytes = median(proxies.map((p) => Number(p?.bytesToClient ?? 0)));
      // Direct mode relays nothing: nix talks to the daemon's socket itself.
      const through = modes === "direct" ? "nix talked to the daemon directly (direct mode)" : `its relay (${modes} mode) passed a median ${Math.round(proxyBytes / 1024)} KiB from the daemon to nix per run of ${drvs}`;
      const notes = [
        `Workload: \`nix eval --store daemon --impure --json --expr 'import bench/expr/drvs.nix { salt = …; n = N; }'\` (N derivations instantiated, none built, a fresh salt every run); ${pairs} interleaved pairs (ABBA) per N after one warm-up pair.`,
        `Beyond the fixed cost, nix-sigstop added about ${perDrvUs.toFixed(0)} µs per derivation; ${through}. nix was stopped ${stops} times in all (expected 0: nothing is built).`,
      ];
      return { tables, notes, data: { pairs, goal: GOAL, heavy, empty, ratio: ratio(heavy), fixedCostMs: median(empty.ms.sigstop) - median(empty.ms.plain), perDrvUs } };
    } finally {
      await lab.cleanup();
    }
  },
};
