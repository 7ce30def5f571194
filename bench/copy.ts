// copy: `nsh copy --to HOST` next to Nix's own copies over ssh, on one private sshd (127.0.0.1) and a
// private Nix 2.8 lab, into a fresh chroot store on the "remote" for every run. Two closures:
// (a) many small paths (test/lab/expr/many.nix, n = 500) and (b) one big path (1 GiB of random data).
// Variants, interleaved run by run with the order rotated every round:
//   nsh   nsh copy --to <alias> --ssh-config <cfg> --remote-store local?root=<fresh> <top>
//   nix   nix copy --to 'ssh://<alias>?remote-store=local?root=<fresh>' <top>   (NIX_SSHOPTS=-F <cfg>)
//   ncc   nix-copy-closure --to <alias> <top>                                    (NIX_SSHOPTS=-F <cfg>)
//   ssh2  nsh copy as above with --openssh-min-size 0: every NAR through ssh2, none through OpenSSH
// nix-copy-closure has no way to name the remote store, so the sshd gives every session
// NIX_REMOTE=local?root=<lab>/ncc (the remote nix-store's default store); that directory is removed
// before each of its runs. nsh and nix copy name their store explicitly, which overrides NIX_REMOTE.
// Every run is checked afterwards (`nix-store --store <dest> --check-validity <whole closure>`); a
// failed run is reported and never counted. Measured per run: wall time (spawn to exit), peak RSS of
// the copying client process (VmHWM sampled every 50 ms), the peaks of its child
// processes (nsh's local `nix-store --serve`, nix's ssh), and CPU time. One extra `nsh copy --json`
// run per closure, not counted, timestamps nsh's progress events to show where its time goes.
import fs from "node:fs";
import path from "node:path";
import { startNixLab, type NixLab } from "../test/lab/nix.ts";
import { builderUri, startSshd, type SshdLab } from "../test/lab/sshd.ts";
import { killGroup, registerGroup, unregisterGroup } from "../test/lab/proc.ts";
import { envNumber, envString, max, median, min, onCleanup, salt, sigstopBin, table, tail, type Bench, type BenchResult } from "./lib.ts";
import { commOf, descendants, load1, statusKiB } from "./proc.ts";

const GOAL = 1.0;

type VariantId = "nsh" | "nix" | "ncc" | "ssh2";
const LABEL: Record<VariantId, string> = { nsh: "nsh copy", nix: "nix copy (ssh://)", ncc: "nix-copy-closure", ssh2: "nsh copy, ssh2 only" };

type CaseId = "small" | "big";

interface Case {
  id: CaseId;
  label: string;
  top: string;
  closure: string[];
  narBytes: number;
  rounds: number;
}

interface Measured {
  ms: number;
  /** VmHWM of the client process, sampled every 50 ms (bytes) */
  peakMain: number;
  /**
   * wait4's maxrss (bytes). Kept in the JSON only: Bun spawns with vfork, and the exec charges the
   * spawner's own RSS (the benchmark's ~46 MiB) to the child, so small clients show Bun's size.
   */
  maxRss: number;
  /** sum of the sampled peaks of the client and its descendants (bytes) */
  peakTree: number;
  children: Array<{ pid: number; comm: string; peak: number }>;
  cpuUserMs: number;
  cpuSysMs: number;
  /** stdout lines with their arrival time (ms since spawn); only kept for the phase run */
  lines?: Array<{ t: number; line: string }>;
  stderr: string;
  /** why the process itself failed (exit status, timeout) */
  failed?: string;
}

interface Run extends Measured {
  variant: VariantId;
  round: number; // 0 = warm-up
  ok: boolean;
  why?: string;
  /** 1-minute load average just before the run (other work on the host shows here) */
  load1: number;
}

async function measured(argv: string[], env: Record<string, string>, timeoutMs: number, keepLines: boolean): Promise<Measured> {
  const t0 = performance.now();
  const proc = Bun.spawn(argv, { env, stdin: "ignore", stdout: "pipe", stderr: "pipe", detached: true });
  registerGroup(proc.pid);
  const stopGroup = onCleanup(() => killGroup(proc.pid, "SIGKILL"));
  const lines: Array<{ t: number; line: string }> = [];
  const readOut = (async () => {
    const dec = new TextDecoder();
    let buf = "";
    for await (const chunk of proc.stdout) {
      const t = performance.now() - t0;
      buf += dec.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        if (keepLines) lines.push({ t, line: buf.slice(0, nl) });
        buf = buf.slice(nl + 1);
      }
    }
  })();
  const err = new Response(proc.stderr).text();

  const peaks = new Map<number, { comm: string; peak: number }>();
  let ticks = 0;
  const sample = () => {
    // New children appear early (nsh's local nix-store, nix's ssh): look for them often at first.
    if (ticks < 4 || ticks % 4 === 0) for (const c of descendants(proc.pid)) if (!peaks.has(c)) peaks.set(c, { comm: commOf(c), peak: 0 });
    ticks++;
    for (const [pid, p] of peaks) {
      const kib = statusKiB(pid, "VmHWM");
      if (kib !== undefined) p.peak = Math.max(p.peak, kib * 1024);
    }
  };
  peaks.set(proc.pid, { comm: commOf(proc.pid), peak: 0 });
  const sampler = setInterval(sample, 50);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(proc.pid, "SIGKILL");
  }, timeoutMs);
  let ms: number;
  try {
    await proc.exited;
    ms = performance.now() - t0;
  } finally {
    clearInterval(sampler);
    clearTimeout(timer);
  }
  const late = <T>(p: Promise<T>, dflt: T): Promise<T> => Promise.race([p, Bun.sleep(2000).then(() => dflt)]);
  const [, stderr] = await Promise.all([late(readOut, undefined), late(err, "")]);
  stopGroup();
  unregisterGroup(proc.pid);
  const ru = proc.resourceUsage();
  const main = peaks.get(proc.pid)!;
  const children = [...peaks].filter(([pid]) => pid !== proc.pid).map(([pid, p]) => ({ pid, comm: p.comm, peak: p.peak }));
  const failed = timedOut ? `timed out after ${timeoutMs / 1000} s` : proc.exitCode !== 0 ? `exit ${proc.exitCode ?? proc.signalCode}` : undefined;
  return {
    ms,
    peakMain: main.peak,
    maxRss: ru?.maxRSS ?? 0,
    peakTree: main.peak + children.reduce((s, c) => s + c.peak, 0),
    children,
    cpuUserMs: Number(ru?.cpuTime.user ?? 0n) / 1000,
    cpuSysMs: Number(ru?.cpuTime.system ?? 0n) / 1000,
    lines: keepLines ? lines : undefined,
    stderr,
    failed,
  };
}

// ---------- the benchmark ----------

const fmtMiB = (b: number) => (b > 0 ? (b / 1048576).toFixed(1) : "–");
const fmtMs = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : "–");

export const copy: Bench = {
  name: "copy",
  title: "nsh copy vs nix copy and nix-copy-closure over ssh: 500 small paths, one 1 GiB path",
  async run(): Promise<BenchResult> {
    const smallN = envNumber("NSH_BENCH_SMALL_PATHS", 500);
    const bigMiB = envNumber("NSH_BENCH_BIG_MIB", 1024);
    const roundsSet = process.env.NSH_BENCH_ROUNDS;
    const smallRounds = envNumber("NSH_BENCH_ROUNDS", 6);
    const bigRounds = envNumber("NSH_BENCH_BIG_ROUNDS", roundsSet ? smallRounds : 4);
    const timeoutMs = envNumber("NSH_BENCH_TIMEOUT", 300) * 1000;
    const caseIds = envString("NSH_BENCH_CASES", "small,big").split(",").map((s) => s.trim()) as CaseId[];
    let variants = envString("NSH_BENCH_VARIANTS", "nsh,nix,ncc,ssh2").split(",").map((s) => s.trim()) as VariantId[];
    for (const v of variants) if (!(v in LABEL)) throw new Error(`NSH_BENCH_VARIANTS: expected nsh, nix, ncc and/or ssh2, got '${v}'`);
    for (const c of caseIds) if (c !== "small" && c !== "big") throw new Error(`NSH_BENCH_CASES: expected small and/or big, got '${c}'`);
    // The snapshot of dist/nsh that main.ts took (nix-sigstop is a link to nsh next to it).
    const nsh = path.join(path.dirname(sigstopBin()), "nsh");

    const lab: NixLab = await startNixLab({ name: "bench-copy" });
    try {
      const nccRoot = path.join(lab.root, "ncc");
      // nix-copy-closure cannot name the remote store or its directory: the sessions' environment does
      // (the lab's sshd gives none by default, like a real one; nix copy gets `store=` in its URL).
      const sshd: SshdLab = await startSshd(lab, { setEnv: { NIX_REMOTE: `local?root=${nccRoot}`, NIX_STORE_DIR: lab.storeDir } });
      const destDir = path.join(lab.root, "d");
      fs.mkdirSync(destDir, { recursive: true });
      const env = { ...lab.env, NIX_SSHOPTS: sshd.sshOpts, NSH_STATE_DIR: path.join(lab.root, "nsh-state") };
      const notes: string[] = [];
      const dropped = new Map<VariantId, string>();

      const sh = async (argv: string[], timeout = 600_000) => {
        const r = await lab.run(argv, { timeoutMs: timeout });
        if (r.code !== 0) throw new Error(`${argv.join(" ")} failed (exit ${r.code}):\n${tail(r.stderr)}`);
        return r.stdout;
      };

      const build = async (id: CaseId): Promise<Omit<Case, "rounds">> => {
        const [n, big] = id === "small" ? [smallN, 0] : [0, bigMiB];
        process.stderr.write(`  building the ${id} closure (n = ${n}, ${big} MiB)…\n`);
        const top = (await sh(["nix-build", lab.expr("many"), "--argstr", "salt", salt(), "--arg", "n", String(n), "--arg", "bigMiB", String(big), "--no-out-link"])).trim();
        const closure = (await sh(["nix-store", "-qR", top])).trim().split("\n");
        const sizes = (await sh(["nix-store", "-q", "--size", ...closure])).trim().split("\n").map(Number);
        const narBytes = sizes.reduce((s, x) => s + x, 0);
        const label = id === "small" ? `${n} small paths (${closure.length} in the closure)` : `one ${big} MiB path (${closure.length} in the closure)`;
        return { id, label, top, closure, narBytes };
      };

      let serial = 0;
      const runOnce = async (c: Case, v: VariantId, round: number, keepLines = false): Promise<Run> => {
        const root = v === "ncc" ? nccRoot : path.join(destDir, `${c.id}-${v}-${round}-${serial++}`);
        fs.rmSync(root, { recursive: true, force: true });
        // Dirty pages of the previous run's destination must not be written back during this one.
        spawnSyncOk(["sync"]);
        const store = `local?root=${root}`;
        const argv =
          v === "nsh" || v === "ssh2"
            ? [nsh, "copy", ...(keepLines ? ["--json"] : []), ...(v === "ssh2" ? ["--openssh-min-size", "0"] : []), "--to", sshd.alias, "--ssh-config", sshd.configFile, "--remote-store", store, c.top]
            : v === "nix"
              ? ["nix", "copy", "--to", builderUri(sshd, { remoteStore: store }), c.top]
              : ["nix-copy-closure", "--to", sshd.alias, c.top];
        const load = load1();
        const m = await measured(argv, env, timeoutMs, keepLines);
        let why = m.failed;
        if (!why) {
          const check = await lab.run(["nix-store", "--store", store, "--check-validity", ...c.closure], { timeoutMs: 120_000 });
          if (check.code !== 0) why = `exit 0, but the destination lacks the closure: ${tail(check.stderr, 400).trim()}`;
        }
        fs.rmSync(root, { recursive: true, force: true });
        const run: Run = { ...m, variant: v, round, ok: !why, why, load1: load };
        process.stderr.write(
          `  ${c.id}, ${round === 0 ? "warm-up" : keepLines ? "phase run (--json, not counted)" : `round ${round}/${c.rounds}`}: ${LABEL[v]} ${run.ok ? `${run.ms.toFixed(0)} ms, peak RSS ${fmtMiB(run.peakMain)} MiB` : `FAILED (${why})`}\n`,
        );
        if (!run.ok) process.stderr.write(`${tail(run.stderr, 1500)}\n`);
        return run;
      };

      // Reference costs: one ssh connection, and starting the nsh binary.
      const refs: Record<string, number[]> = { ssh: [], nshStart: [] };
      for (let i = 0; i < 5; i++) {
        refs.ssh!.push((await measured(["ssh", "-F", sshd.configFile, sshd.alias, "true"], env, 30_000, false)).ms);
        refs.nshStart!.push((await measured([nsh, "--version"], env, 30_000, false)).ms);
      }

      const results: Array<{ c: Case; runs: Run[]; phase?: Run }> = [];
      for (const id of caseIds) {
        const c: Case = { ...(await build(id)), rounds: id === "small" ? smallRounds : bigRounds };
        const runs: Run[] = [];
        // Warm-up (not counted): page cache, sshd, the first chroot store. A variant that fails
        // here is dropped with its reason.
        for (const v of variants) {
          const r = await runOnce(c, v, 0);
          runs.push(r);
          if (!r.ok) {
            dropped.set(v, `${r.why}: ${tail(r.stderr, 600).trim()}`);
            notes.push(`${LABEL[v]} was dropped: its warm-up run failed (${r.why}). ${tail(r.stderr, 600).trim()}`);
          }
        }
        variants = variants.filter((v) => !dropped.has(v));
        for (let round = 1; round <= c.rounds; round++) {
          const k = (round - 1) % variants.length;
          const order = [...variants.slice(k), ...variants.slice(0, k)];
          for (const v of order) runs.push(await runOnce(c, v, round));
        }
        const phase = variants.includes("nsh") ? await runOnce(c, "nsh", c.rounds + 1, true) : undefined;
        results.push({ c, runs, phase });
      }

      // ---------- tables ----------
      const counted = (runs: Run[], v: VariantId) => runs.filter((r) => r.variant === v && r.round > 0);
      const good = (runs: Run[], v: VariantId) => counted(runs, v).filter((r) => r.ok);
      const timeRows: Array<Array<string | number>> = [];
      const ratioRows: Array<Array<string | number>> = [];
      const phaseRows: Array<Array<string | number>> = [];
      const summary: Record<string, unknown>[] = [];
      for (const { c, runs, phase } of results) {
        const med: Partial<Record<VariantId, number>> = {};
        for (const v of variants) {
          const g = good(runs, v);
          const ms = g.map((r) => r.ms);
          med[v] = median(ms);
          const mibs = c.narBytes / 1048576 / (median(ms) / 1000);
          const kids = [...new Set(g.flatMap((r) => r.children.map((k) => k.comm)))].join(", ") || "–";
          timeRows.push([
            c.label,
            LABEL[v],
            `${g.length} / ${counted(runs, v).length}`,
            fmtMs(min(ms)),
            fmtMs(median(ms)),
            fmtMs(max(ms)),
            c.id === "big" ? mibs.toFixed(0) : (median(ms) / c.closure.length).toFixed(2),
            fmtMiB(max(g.map((r) => r.peakMain))),
            `${fmtMiB(max(g.map((r) => r.peakTree)))} (${kids})`,
            (median(g.map((r) => r.cpuUserMs + r.cpuSysMs)) / 1000).toFixed(2),
          ]);
          summary.push({ case: c.id, variant: v, ok: g.length, runs: counted(runs, v).length, minMs: min(ms), medianMs: median(ms), maxMs: max(ms), peakMainBytes: max(g.map((r) => r.peakMain)), maxRssBytes: max(g.map((r) => r.maxRss)), peakTreeBytes: max(g.map((r) => r.peakTree)), cpuMedianMs: median(g.map((r) => r.cpuUserMs + r.cpuSysMs)) });
        }
        if (variants.includes("nsh")) {
          for (const peer of variants.filter((v) => v !== "nsh")) {
            // Per round: nsh against the peer in the same round.
            const pairs: number[] = [];
            for (let round = 1; round <= c.rounds; round++) {
              const a = runs.find((r) => r.variant === "nsh" && r.round === round && r.ok);
              const b = runs.find((r) => r.variant === peer && r.round === round && r.ok);
              if (a && b) pairs.push(a.ms / b.ms);
            }
            const ratio = med.nsh! / med[peer]!;
            ratioRows.push([
              c.label,
              `nsh / ${LABEL[peer]}`,
              ratio.toFixed(3),
              pairs.length ? `${min(pairs).toFixed(3)} – ${max(pairs).toFixed(3)}` : "–",
              fmtMs(med.nsh! - med[peer]!),
              peer === "nix" ? `≤ ${GOAL}: ${ratio <= GOAL ? "met" : "not met"}` : "",
            ]);
          }
        }
        if (phase?.ok && phase.lines) {
          const ev = phase.lines.flatMap(({ t, line }) => {
            try {
              return [{ t, e: JSON.parse(line) as Record<string, unknown> }];
            } catch {
              return [];
            }
          });
          const at = (name: string, last = false) => {
            const xs = ev.filter((x) => x.e.event === name);
            return (last ? xs.at(-1) : xs[0])?.t ?? Number.NaN;
          };
          const begin = at("begin");
          const firstStart = at("path-start");
          const lastDone = at("path-done", true);
          const end = at("end");
          const sent = ev.filter((x) => x.e.event === "path-done" && x.e.ok).length;
          phaseRows.push([
            c.label,
            fmtMs(phase.ms),
            fmtMs(begin),
            fmtMs(lastDone - firstStart),
            sent ? ((lastDone - firstStart) / sent).toFixed(2) : "–",
            fmtMs(phase.ms - end),
            ((phase.cpuUserMs + phase.cpuSysMs) / 1000).toFixed(2),
          ]);
        }
      }
      const tables = [
        table(["closure", "client", "ok runs", "min ms", "median ms", "max ms", "MiB/s (big) or ms per path, start-up included (small)", "client peak RSS MiB (VmHWM, max over runs)", "client + children, sum of peaks MiB", "CPU s (median, incl. children)"], timeRows),
        table(["closure", "ratio", "ratio of medians", "per-round range", "median difference ms", "goal"], ratioRows),
      ];
      if (phaseRows.length) tables.push(table(["closure (one extra nsh copy --json run)", "wall ms", "start → begin ms (startup, ssh, queries)", "first path-start → last path-done ms", "ms per path sent", "end → exit ms", "CPU s"], phaseRows));
      tables.push(table(["reference", "runs", "min ms", "median ms", "max ms"], [
        ["`ssh -F <cfg> <alias> true`", refs.ssh!.length, fmtMs(min(refs.ssh!)), fmtMs(median(refs.ssh!)), fmtMs(max(refs.ssh!))],
        ["`nsh --version` (start-up of the binary)", refs.nshStart!.length, fmtMs(min(refs.nshStart!)), fmtMs(median(refs.nshStart!)), fmtMs(max(refs.nshStart!))],
      ]));
      notes.unshift(
        `Each run copies into a fresh chroot store on the sshd (127.0.0.1) and is checked with \`nix-store --store <dest> --check-validity <closure>\`. Order rotated every round (${variants.map((v) => LABEL[v]).join(", ")}), one warm-up round not counted. Rounds: small ${smallRounds}, big ${bigRounds}.`,
        "nix-copy-closure cannot name the remote store: the sshd sets NIX_REMOTE=local?root=<lab>/ncc for every session, so the remote `nix-store --serve` it starts uses that chroot store, removed before each run.",
      );
      const loads = results.flatMap(({ runs }) => runs.filter((r) => r.round > 0).map((r) => r.load1)).filter(Number.isFinite);
      if (loads.length) notes.push(`1-minute load average before the counted runs: ${min(loads).toFixed(2)} – ${max(loads).toFixed(2)} (median ${median(loads).toFixed(2)}) on ${navigator.hardwareConcurrency} cores.`);
      for (const { c, runs } of results) {
        const bad = runs.filter((r) => r.round > 0 && !r.ok);
        for (const r of bad) notes.push(`FAILED (${c.id}, round ${r.round}, ${LABEL[r.variant]}): ${r.why}`);
      }
      const strip = (r?: Run) => (r ? { ...r, stderr: tail(r.stderr, 1500) } : r);
      return {
        tables,
        notes,
        data: {
          settings: { smallN, bigMiB, smallRounds, bigRounds, timeoutMs, variants, caseIds },
          dropped: Object.fromEntries(dropped),
          refs,
          summary,
          cases: results.map(({ c, runs, phase }) => ({ id: c.id, label: c.label, top: c.top, paths: c.closure.length, narBytes: c.narBytes, rounds: c.rounds, runs: runs.map((r) => strip(r)), phase: strip(phase) })),
        },
      };
    } finally {
      await lab.cleanup();
    }
  },
};

function spawnSyncOk(argv: string[]): void {
  Bun.spawnSync(argv, { stdin: "ignore", stdout: "ignore", stderr: "ignore" });
}
