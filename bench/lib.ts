// Shared pieces of the benchmarks: paths, statistics, markdown tables, timed runs in their own
// process groups, and a registry of synchronous clean-ups that run on exit and on signals.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { killGroup, registerGroup, unregisterGroup } from "../test/lab/proc.ts";

export const REPO = path.resolve(import.meta.dir, "..");
/** The binary measured: dist/nix-sigstop, or NSH_BENCH_NSH (another build of nsh, e.g. an older commit's). */
export const SIGSTOP = process.env.NSH_BENCH_NSH || path.join(REPO, "dist", "nix-sigstop");
export const EXPR = path.join(import.meta.dir, "expr");
export const RESULTS = path.join(import.meta.dir, "results");

export interface BenchResult {
  /** Markdown tables, printed in order. */
  tables: string[];
  /** Lines printed after the tables (goal, verdict, what was surprising). */
  notes: string[];
  /** Everything measured, for bench/results/*.json. */
  data: Record<string, unknown>;
}

export interface Bench {
  name: string;
  title: string;
  run(): Promise<BenchResult>;
}

// ---------- the binary under test ----------

let snapshot: string | undefined;

/**
 * Copies dist/nsh to a private directory (as nsh, with the nix-sigstop link) so that a rebuild
 * during a long benchmark cannot mix two binaries in one measurement. Removed at exit.
 */
export function snapshotSigstop(): { path: string; bytes: number; mtime: string } {
  const real = fs.realpathSync(SIGSTOP);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-bench-bin-"));
  onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.copyFileSync(real, path.join(dir, "nsh"));
  fs.chmodSync(path.join(dir, "nsh"), 0o755);
  fs.symlinkSync("nsh", path.join(dir, "nix-sigstop"));
  snapshot = path.join(dir, "nix-sigstop");
  const st = fs.statSync(real);
  return { path: real, bytes: st.size, mtime: st.mtime.toISOString() };
}

/** nix-sigstop as measured: the snapshot if one was taken, else dist/nix-sigstop. */
export const sigstopBin = (): string => snapshot ?? SIGSTOP;

// ---------- statistics and formatting ----------

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export const min = (xs: readonly number[]): number => Math.min(...xs);
export const max = (xs: readonly number[]): number => Math.max(...xs);

export const salt = (): string => `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;

export const GiB = 1024 ** 3;
export const MiB = 1024 ** 2;

export function fmtBytes(b: number | undefined): string {
  if (b === undefined || !Number.isFinite(b)) return "–";
  return b >= GiB ? `${(b / GiB).toFixed(2)} GiB` : `${Math.round(b / MiB)} MiB`;
}

export function table(head: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number>>): string {
  const line = (cells: ReadonlyArray<string | number>) => `| ${cells.map(String).join(" | ")} |`;
  return [line(head), line(head.map(() => "---")), ...rows.map(line)].join("\n");
}

/** "1.5G", "512M", "4096" → bytes. */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?$/i.exec(text.trim());
  if (!m) throw new Error(`expected a size such as 512M or 1.5G, got '${text}'`);
  const unit = { "": 1, K: 1024, M: MiB, G: GiB, T: 1024 * GiB }[m[2]!.toUpperCase()] ?? 1;
  return Math.round(Number(m[1]) * unit);
}

/** A numeric setting from the environment (NSH_BENCH_*), with its default. */
export function envNumber(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === "") return dflt;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`${name}: expected a number, got '${v}'`);
  return n;
}

export function envSize(name: string, dflt: string): number {
  return parseSize(process.env[name] || dflt);
}

export function envString(name: string, dflt: string): string {
  return process.env[name] || dflt;
}

export function machine(): Record<string, unknown> {
  let distro = "";
  try {
    distro = /^PRETTY_NAME="?([^"\n]*)/m.exec(fs.readFileSync("/etc/os-release", "utf8"))?.[1] ?? "";
  } catch {}
  return { distro, kernel: os.release(), cores: os.cpus().length, memTotalBytes: os.totalmem(), hostname: os.hostname() };
}

// ---------- clean-ups that must happen whatever happens ----------

const cleanups = new Map<number, () => void>();
let nextCleanup = 0;

/** Registers a synchronous clean-up; returns a function that runs it now (once) and unregisters it. */
export function onCleanup(fn: () => void): () => void {
  const id = nextCleanup++;
  cleanups.set(id, fn);
  return () => {
    if (!cleanups.delete(id)) return;
    fn();
  };
}

/** Runs every registered clean-up, newest first; errors are reported, not thrown. */
export function runCleanups(): void {
  for (const id of [...cleanups.keys()].reverse()) {
    const fn = cleanups.get(id)!;
    cleanups.delete(id);
    try {
      fn();
    } catch (e) {
      process.stderr.write(`bench: clean-up failed: ${(e as Error).message}\n`);
    }
  }
}

// ---------- timed runs ----------

export interface Outcome {
  code: number | null;
  signal: string | null;
  ms: number;
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

/**
 * Runs argv in its own process group and measures its wall time up to its exit (not up to the end of
 * its output, which a lingering grandchild could hold open). The group is killed on timeout and
 * whenever the benchmark exits.
 */
export async function timed(argv: string[], env: Record<string, string>, opts: { timeoutMs: number; cwd?: string }): Promise<Outcome> {
  const t0 = performance.now();
  const proc = Bun.spawn(argv, { env, cwd: opts.cwd, stdin: "ignore", stdout: "pipe", stderr: "pipe", detached: true });
  registerGroup(proc.pid);
  const stopGroup = onCleanup(() => killGroup(proc.pid, "SIGKILL"));
  const out = new Response(proc.stdout).text();
  const err = new Response(proc.stderr).text();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(proc.pid, "SIGKILL");
  }, opts.timeoutMs);
  let ms: number;
  try {
    await proc.exited;
    ms = performance.now() - t0;
  } finally {
    clearTimeout(timer);
  }
  const late = <T>(p: Promise<T>, dflt: T): Promise<T> => Promise.race([p, Bun.sleep(2000).then(() => dflt)]);
  const [stdout, stderr] = await Promise.all([late(out, ""), late(err, "")]);
  stopGroup(); // leftovers of the group die with it
  unregisterGroup(proc.pid);
  const signal = proc.signalCode === null || proc.signalCode === undefined ? null : String(proc.signalCode);
  return { code: proc.exitCode, signal, ms, timedOut, stdout, stderr };
}

/** Last `n` characters, for logs kept in the results. */
export const tail = (s: string, n = 2000): string => (s.length > n ? `…${s.slice(-n)}` : s);

export function readJson(file: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}
