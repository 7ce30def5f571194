// Runs the built nix-sigstop against a lab, and finds the processes it starts.
import fs from "node:fs";
import path from "node:path";
import type { NixLab } from "../lab/nix.ts";

export const DIST = path.join(import.meta.dir, "..", "..", "dist");
export const SIGSTOP = path.join(DIST, "nix-sigstop");
if (!fs.existsSync(SIGSTOP)) throw new Error(`${SIGSTOP} is missing: run 'npm run build' before the tests`);

export const salt = () => `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Starts nix-sigstop (in its own process group, like a shell job) and returns the handle. */
export function spawnSigstop(lab: NixLab, args: string[], env: Record<string, string> = {}) {
  return Bun.spawn([SIGSTOP, ...args], {
    env: { ...lab.env, ...env },
    cwd: lab.root,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
}

export async function sigstop(lab: NixLab, args: string[], env: Record<string, string> = {}): Promise<Run> {
  const p = spawnSigstop(lab, args, env);
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, stdout, stderr };
}

export async function nix(lab: NixLab, args: string[]): Promise<Run> {
  const r = await lab.run(["nix", ...args]);
  return { code: r.code, stdout: r.stdout, stderr: r.stderr };
}

export function children(pid: number): number[] {
  try {
    return fs
      .readdirSync(`/proc/${pid}/task`)
      .flatMap((t) => fs.readFileSync(`/proc/${pid}/task/${t}/children`, "utf8").trim().split(/\s+/))
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

export function state(pid: number): string | undefined {
  try {
    return /^State:\s+(\S)/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  } catch {
    return undefined;
  }
}

export function cmdline(pid: number): string[] {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  } catch {
    return [];
  }
}

/** Every live process whose command line or environment mentions `needle` (a lab root, say). */
export function processesMentioning(needle: string): { pid: number; state: string; cmd: string }[] {
  const out: { pid: number; state: string; cmd: string }[] = [];
  for (const d of fs.readdirSync("/proc")) {
    const pid = Number(d);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    let env = "";
    try {
      env = fs.readFileSync(`/proc/${pid}/environ`, "utf8");
    } catch {}
    const cmd = cmdline(pid).join(" ");
    if ((cmd.includes(needle) || env.includes(needle)) && state(pid) !== "Z") out.push({ pid, state: state(pid) ?? "?", cmd });
  }
  return out;
}

/** The nix client the wrapper started: its child that is not the guard. */
export async function findNix(wrapperPid: number, timeoutMs = 10000): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    const nix = children(wrapperPid).find((c) => cmdline(c)[0]?.endsWith("nix"));
    if (nix) return nix;
    await Bun.sleep(20);
  }
  throw new Error(`no nix child of ${wrapperPid} after ${timeoutMs} ms`);
}

/**
 * The wrapper's private runtime directory for this run, read from the nix it started (`--option build-hook
 * <dir>/build-hook`): wherever it is (XDG_RUNTIME_DIR, TMPDIR), this is the one to watch.
 */
export function runtimeDirOf(nixPid: number): string {
  const argv = cmdline(nixPid);
  const i = argv.findIndex((a, k) => a === "build-hook" && argv[k - 1] === "--option");
  if (i < 0 || !argv[i + 1]) throw new Error(`nix (pid ${nixPid}) has no --option build-hook: ${argv.join(" ")}`);
  return path.dirname(argv[i + 1]!);
}

export async function waitFor(cond: () => boolean, timeoutMs: number, what: string, stepMs = 25): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(stepMs);
  }
}

export function report(file: string): Record<string, unknown> & { ifdBuilds: number; stops: number; builds: { drv: string; reply: string; ok?: boolean }[]; proxy?: Record<string, number> } {
  return JSON.parse(fs.readFileSync(file, "utf8"));
}
