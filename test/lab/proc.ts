// Process helpers for the test lab: spawn in own process groups, run with a
// timeout, and find/kill everything a lab started, always by PID.
//
// Why an environment marker sweep: nix-daemon's per-connection children and
// every builder call setsid(), so killing the daemon's process group does not
// reach them (checked on Nix 2.8). Every process a lab starts inherits an
// environment entry that contains the lab's unique root path (lab.env, the
// daemon env, sshd's SetEnv, or a builder's NIX_STORE=<root>/s), so scanning
// /proc/<pid>/environ finds exactly the lab's processes, orphans included.
import * as net from "node:net";
import * as fs from "node:fs";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { holdRootNamespace, inRootNamespace, releaseRootNamespaces } from "./mount-ns.ts";

export { holdRootNamespace, mountNamespace, releaseRootNamespaces } from "./mount-ns.ts";

export interface RunOptions {
  env?: Record<string, string>;
  stdin?: string;
  timeoutMs?: number;
  cwd?: string;
}

export interface RunResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  /** true when the process group was killed because timeoutMs elapsed */
  timedOut: boolean;
  durationMs: number;
}

export const DEFAULT_RUN_TIMEOUT_MS = 120_000;

// Process-group leaders and marker roots to kill if the test process exits
// without cleaning up (crash, failed beforeAll, Ctrl-C). Two mechanisms: an
// in-process exit/signal hook, and a watchdog process (watchdog.ts), because
// `bun test` exits without running process "exit" handlers.
const liveGroups = new Set<number>();
const liveRoots = new Set<string>();
const liveDirs = new Set<string>();
const liveCleanups = new Map<string, string[]>();
let hooksInstalled = false;

export function registerGroup(pid: number): void {
  installExitHooks();
  liveGroups.add(pid);
  tellWatchdog({ op: "group", pid });
}
export function unregisterGroup(pid: number): void {
  liveGroups.delete(pid);
  tellWatchdog({ op: "ungroup", pid });
}
/** Remember a marker root (swept on exit) and optionally a dir to remove. */
export function registerRoot(root: string, removeDir: boolean): void {
  installExitHooks();
  liveRoots.add(root);
  if (removeDir) liveDirs.add(root);
  tellWatchdog({ op: "root", root, rm: removeDir });
}
export function unregisterRoot(root: string): void {
  liveRoots.delete(root);
  liveDirs.delete(root);
  releaseRootNamespaces(root);
  tellWatchdog({ op: "unroot", root });
}

/** A command to run when the test process ends without having called unregisterCleanup(id). */
export function registerCleanup(id: string, argv: string[]): void {
  installExitHooks();
  liveCleanups.set(id, argv);
  tellWatchdog({ op: "cleanup", id, argv });
}
export function unregisterCleanup(id: string): void {
  liveCleanups.delete(id);
  tellWatchdog({ op: "uncleanup", id });
}

/** Register the namespace pid runs in (once it is up) as part of root's marker, here and in the watchdog. */
export function registerRootNamespace(root: string, pid: number): void {
  const ns = holdRootNamespace(root, pid);
  if (ns) tellWatchdog({ op: "rootns", root, pid, ns });
}

type Sink = { write(s: string): void };
let watchdog: Sink | null | undefined;

function startWatchdog(): Sink | null {
  // process.execPath is bun itself when running .ts; a compiled binary is not.
  const bun = /bun/.test(path.basename(process.execPath)) ? process.execPath : Bun.which("bun");
  if (!bun) return null;
  try {
    const proc = Bun.spawn([bun, path.join(import.meta.dir, "watchdog.ts")], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
      stdin: "pipe",
      stdout: "ignore",
      stderr: "ignore",
      detached: true, // own session: a Ctrl-C to our group does not stop it first
    });
    proc.unref();
    proc.stdin.unref();
    return {
      write: (s: string): void => {
        proc.stdin.write(s);
        void proc.stdin.flush();
      },
    };
  } catch {
    return null;
  }
}

function tellWatchdog(msg: Record<string, unknown>): void {
  if (process.env.NSH_LAB_WATCHDOG === "0") return;
  if (watchdog === undefined) watchdog = startWatchdog();
  try {
    watchdog?.write(`${JSON.stringify(msg)}\n`);
  } catch {
    watchdog = null; // the in-process hooks remain
  }
}

function emergencyCleanup(): void {
  for (const pid of liveGroups) killGroup(pid, "SIGKILL");
  for (const root of liveRoots) for (const pid of findByMarker(root)) trySignal(pid, "SIGKILL");
  for (const dir of liveDirs) removeTree(dir);
  for (const argv of liveCleanups.values()) {
    if (argv.length > 0) spawnSync(argv[0]!, argv.slice(1), { stdio: "ignore", timeout: 120_000 });
  }
  liveCleanups.clear();
  liveGroups.clear();
  liveRoots.clear();
  liveDirs.clear();
}

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on("exit", emergencyCleanup);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const handler = (): void => {
      emergencyCleanup();
      // Re-raise with the default action so the exit status stays honest,
      // unless someone else handles the signal (they already got it).
      process.removeListener(sig, handler);
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, handler);
  }
}

export function trySignal(pid: number, sig: NodeJS.Signals | number): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

/** Signal a process group (leader pid) and the leader itself. */
export function killGroup(pid: number, sig: NodeJS.Signals | number): void {
  trySignal(-pid, sig);
  trySignal(pid, sig);
}

/**
 * What is left of a group whose leader has exited and been reaped. Its PID is free again (pid_max
 * is 32768 here, and a full test run wraps it), so the PID itself is never signalled, and the group
 * only while no process has that PID: a kernel never hands out a PID still in use as a process
 * group, so a process with it means the group is gone and the number belongs to someone else
 * (another lab's daemon, started as its own group leader).
 */
export function killLeftovers(pid: number, sig: NodeJS.Signals | number): void {
  if (fs.existsSync(`/proc/${pid}`)) return;
  trySignal(-pid, sig);
}

/** The process's start time (clock ticks since boot), which tells a reused PID from the process seen before. */
export function startTimeOf(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
  } catch {
    return undefined;
  }
}

/** Processes seen earlier, each signalled only if its PID still names the same process. */
export function snapshot(pids: number[]): { pid: number; start: number | undefined }[] {
  return pids.map((pid) => ({ pid, start: startTimeOf(pid) }));
}
export function signalSnapshot(seen: { pid: number; start: number | undefined }[], sig: NodeJS.Signals | number): void {
  for (const { pid, start } of seen) if (start !== undefined && startTimeOf(pid) === start) trySignal(pid, sig);
}

/** Alive and not a zombie (PID 1 here does not always reap orphans). */
export function isAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

function envMatches(environ: string, root: string): boolean {
  const withSlash = root + "/";
  for (const entry of environ.split("\0")) {
    if (entry.includes(withSlash) || entry.endsWith("=" + root)) return true;
  }
  return false;
}

/** PIDs (not us, not zombies) whose environment mentions `root`. */
export function findByMarker(root: string): number[] {
  const found: number[] = [];
  let entries: string[];
  try {
    entries = fs.readdirSync("/proc");
  } catch {
    return found;
  }
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    let environ: string;
    try {
      environ = fs.readFileSync(`/proc/${pid}/environ`, "latin1");
    } catch {
      continue; // gone, or a kernel thread
    }
    const inNs = (): boolean => inRootNamespace(root, pid);
    if ((envMatches(environ, root) || inNs()) && isAlive(pid)) found.push(pid);
  }
  return found;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** SIGTERM everything carrying the marker, then SIGKILL what is left. */
export async function sweepMarker(root: string, graceMs = 2000): Promise<number[]> {
  const first = findByMarker(root);
  for (const pid of first) trySignal(pid, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && findByMarker(root).length > 0) await sleep(50);
  for (let round = 0; round < 20; round++) {
    const left = findByMarker(root);
    if (left.length === 0) break;
    for (const pid of left) trySignal(pid, "SIGKILL");
    await sleep(50);
  }
  return first;
}

/** Store paths are read-only: make the tree writable, then remove it. */
export function removeTree(dir: string): void {
  if (!fs.existsSync(dir)) return;
  spawnSync("chmod", ["-R", "u+w", dir], { stdio: "ignore" });
  fs.rmSync(dir, { recursive: true, force: true });
}

export function tailFile(file: string, lines = 30): string {
  try {
    return fs.readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return `(no log at ${file})`;
  }
}

// Collect a stream's bytes so a partial result is available even if an
// escaped grandchild keeps the pipe open after the process itself exited.
function collect(stream: ReadableStream<Uint8Array>): { done: Promise<void>; text: () => string } {
  const chunks: Uint8Array[] = [];
  const done = (async () => {
    const reader = stream.getReader();
    try {
      for (;;) {
        const { done: end, value } = await reader.read();
        if (end) break;
        chunks.push(value);
      }
    } catch {
      // stream torn down: keep what we have
    }
  })();
  return { done, text: () => Buffer.concat(chunks).toString("utf8") };
}

/** Run argv in its own process group; the whole group is killed on timeout. */
export async function runCommand(argv: string[], opts: RunOptions & { env: Record<string, string> }): Promise<RunResult> {
  const started = Date.now();
  const proc = Bun.spawn(argv, {
    env: opts.env,
    cwd: opts.cwd,
    stdin: opts.stdin === undefined ? "ignore" : Buffer.from(opts.stdin),
    stdout: "pipe",
    stderr: "pipe",
    detached: true,
  });
  registerGroup(proc.pid);
  const out = collect(proc.stdout);
  const err = collect(proc.stderr);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(proc.pid, "SIGKILL");
  }, opts.timeoutMs ?? DEFAULT_RUN_TIMEOUT_MS);
  try {
    await proc.exited;
    await Promise.race([Promise.all([out.done, err.done]), sleep(2000)]);
  } finally {
    clearTimeout(timer);
    // Leftover members of the group (e.g. a backgrounded child) die with it.
    killLeftovers(proc.pid, "SIGKILL");
    unregisterGroup(proc.pid);
  }
  return {
    code: proc.exitCode,
    signal: proc.signalCode === null || proc.signalCode === undefined ? null : String(proc.signalCode),
    stdout: out.text(),
    stderr: err.text(),
    timedOut,
    durationMs: Date.now() - started,
  };
}

export interface Background {
  proc: Bun.Subprocess;
  pid: number;
  /** SIGTERM the group, SIGKILL after graceMs; resolves when the leader is gone. */
  stop(graceMs?: number): Promise<void>;
}

/** Start a long-running service in its own session, output appended to logFile. */
export function spawnBackground(argv: string[], env: Record<string, string>, logFile: string, cwd?: string): Background {
  const fd = fs.openSync(logFile, "a");
  let proc: Bun.Subprocess;
  try {
    proc = Bun.spawn(argv, { env, cwd, stdin: "ignore", stdout: fd, stderr: fd, detached: true });
  } finally {
    fs.closeSync(fd);
  }
  const pid = proc.pid;
  // A forgotten cleanup must not keep the test process alive forever: the
  // exit hook kills the group instead.
  proc.unref();
  registerGroup(pid);
  // Forget a leader that died on its own, so a reused PID is never signalled
  // later (the marker sweep still finds what its group left behind).
  void proc.exited.then(() => unregisterGroup(pid));
  const stop = async (graceMs = 3000): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) {
      killGroup(pid, "SIGTERM");
      const exited = await Promise.race([proc.exited.then(() => true), sleep(graceMs).then(() => false)]);
      if (!exited) {
        killGroup(pid, "SIGKILL");
        await proc.exited;
      }
    }
    killLeftovers(pid, "SIGKILL"); // group members that ignored SIGTERM
    unregisterGroup(pid);
  };
  return { proc, pid, stop };
}

/** Poll `check` until it returns true; false on timeout. */
export async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs: number, stepMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(stepMs);
  }
}

/** True once something accepts a connection there (a unix socket path, or host and port). */
export function accepts(where: { path: string } | { host: string; port: number }, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.createConnection(where);
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.once("connect", () => done(true));
    sock.once("error", () => done(false));
  });
}
