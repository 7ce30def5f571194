// overhead: what nix-sigstop costs an evaluation that never waits for a build. The same IFD-free
// evaluation, which instantiates thousands of derivations (so the client talks to the daemon a lot,
// every message through nix-sigstop's proxy), runs as plain nix and through nix-sigstop, alternating
// run by run (ABBA order) on one lab daemon. Reports median wall times and their ratio.
import path from "node:path";
import { startNixLab } from "../test/lab/nix.ts";
import { EXPR, SIGSTOP, envNumber, max, median, min, readJson, salt, table, tail, timed, type Bench, type BenchResult, type Outcome } from "./lib.ts";

const GOAL = 1.03;

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
      const evalArgs = (s: string) => ["eval", "--store", "daemon", "--impure", "--json", "--expr", `import ${path.join(EXPR, "drvs.nix")} { salt = "${s}"; n = ${drvs}; }`];
      const reports: Record<string, unknown>[] = [];
      const variants = {
        plain: (s: string) => ["nix", ...evalArgs(s)],
        sigstop: (s: string) => [SIGSTOP, "--quiet", "--shared-dir", shared, "--report", path.join(lab.root, `report-${s}.json`), ...evalArgs(s)],
      };
      type Variant = keyof typeof variants;
      const once = async (v: Variant): Promise<Outcome> => {
        // Salts of one length: every run writes the same number of .drv bytes.
        const s = salt().padEnd(14, "0").slice(0, 14);
        const o = await timed(variants[v](s), lab.env, { timeoutMs, cwd: lab.root });
        if (o.code !== 0 || !/^\d+\s*$/.test(o.stdout)) {
          throw new Error(`${v} run failed (exit ${o.code}, signal ${o.signal}${o.timedOut ? ", timed out" : ""}):\n${tail(o.stderr)}`);
        }
        if (v === "sigstop") reports.push(readJson(path.join(lab.root, `report-${s}.json`)) ?? {});
        return o;
      };
      // Warm-up, not counted: page cache, the daemon's first connections, the store's database.
      await once("plain");
      await once("sigstop");
      reports.length = 0;

      const ms: Record<Variant, number[]> = { plain: [], sigstop: [] };
      const pairRatios: number[] = [];
      for (let i = 0; i < pairs; i++) {
        const order: Variant[] = i % 2 === 0 ? ["plain", "sigstop"] : ["sigstop", "plain"];
        const got: Partial<Record<Variant, number>> = {};
        for (const v of order) got[v] = (await once(v)).ms;
        ms.plain.push(got.plain!);
        ms.sigstop.push(got.sigstop!);
        pairRatios.push(got.sigstop! / got.plain!);
        process.stderr.write(`  pair ${i + 1}/${pairs}: plain ${got.plain!.toFixed(0)} ms, nix-sigstop ${got.sigstop!.toFixed(0)} ms\n`);
      }

      const ratio = median(ms.sigstop) / median(ms.plain);
      const row = (name: string, xs: number[]) => [name, xs.length, min(xs).toFixed(0), median(xs).toFixed(0), max(xs).toFixed(0)];
      const stops = reports.reduce((n, r) => n + Number(r.stops ?? 0), 0);
      const proxyBytes = median(reports.map((r) => Number((r.proxy as { bytesToClient?: number } | undefined)?.bytesToClient ?? 0)));
      const tables = [
        table(["variant", "runs", "min ms", "median ms", "max ms"], [row("plain nix", ms.plain), row("nix-sigstop", ms.sigstop)]),
        table(
          ["ratio nix-sigstop / plain", "value", "goal"],
          [
            ["of the medians", ratio.toFixed(3), `≤ ${GOAL} ${ratio <= GOAL ? "(met)" : "(not met)"}`],
            ["median of per-pair ratios", median(pairRatios).toFixed(3), ""],
            ["range of per-pair ratios", `${min(pairRatios).toFixed(3)} – ${max(pairRatios).toFixed(3)}`, ""],
          ],
        ),
      ];
      const notes = [
        `Workload: \`nix eval --store daemon --impure --json --expr 'import bench/expr/drvs.nix { salt = …; n = ${drvs}; }'\` (${drvs} derivations instantiated, none built; a fresh salt every run), ${pairs} interleaved pairs after one warm-up pair.`,
        `nix-sigstop stopped nix ${stops} times in total (expected 0: no builds); its proxy passed a median ${Math.round(proxyBytes / 1024)} KiB from the daemon to nix per run.`,
      ];
      return { tables, notes, data: { drvs, pairs, ms, pairRatios, ratioOfMedians: ratio, goal: GOAL, sigstopReports: reports } };
    } finally {
      await lab.cleanup();
    }
  },
};
