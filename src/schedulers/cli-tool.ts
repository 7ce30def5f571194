// Running one of a scheduler's command-line tools (slurm-cli, pbs-cli): from argv, never a shell;
// the environment is the caller's (nothing of nsh's own leaks into a job); optionally as another
// user (Bun.spawn's uid/gid: nsh must be root); bounded in time. Also what both backends share
// around it: the options every tool backend has, the tool lookup, and the cached preparation.
import * as fs from "node:fs";
import * as path from "node:path";
import { SchedulerError } from "./scheduler.ts";

/** PATH for the tools' own children when the caller gives none. */
export const SYS_PATH = "/usr/local/bin:/usr/bin:/bin";

export interface UserIds {
  uid: number;
  gid: number;
}

export interface ToolCall {
  /** the tool's absolute path, then its arguments */
  argv: string[];
  stdin?: string;
  env: Record<string, string>;
  /** run as this uid and gid */
  ids?: UserIds;
  timeoutMs: number;
}

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
  /** killed at the time bound */
  timedOut: boolean;
}

/** Runs the tool to its end (or its time bound); throws only when it cannot be started at all. */
export async function runTool(c: ToolCall): Promise<ToolResult> {
  const t0 = performance.now();
  const proc = Bun.spawn(c.argv, {
    stdin: c.stdin === undefined ? "ignore" : Buffer.from(c.stdin),
    stdout: "pipe",
    stderr: "pipe",
    env: c.env,
    cwd: "/",
    ...(c.ids ? { uid: c.ids.uid, gid: c.ids.gid } : {}),
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill("SIGKILL");
  }, c.timeoutMs);
  const text = (s: ReadableStream<Uint8Array>): Promise<string> => new Response(s).text();
  const [stdout, stderr, code] = await Promise.all([text(proc.stdout), text(proc.stderr), proc.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr, ms: performance.now() - t0, timedOut };
}

/** A user setting (name or uid) → uid and gid, through NSS (`getent passwd`), so LDAP users work too. */
export async function resolveUser(setting: string, user: string): Promise<UserIds> {
  const proc = Bun.spawn(["getent", "passwd", user], { stdout: "pipe", stderr: "ignore", env: { PATH: SYS_PATH } });
  const [text, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
  const f = text.trim().split("\n")[0]?.split(":") ?? [];
  if (code !== 0 || f.length < 4 || !/^\d+$/.test(f[2]!) || !/^\d+$/.test(f[3]!)) {
    throw new SchedulerError("config", `${setting} '${user}': no such user (getent passwd found nothing)`);
  }
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

/** Options every command-line backend has (each adds where its tools are and its own settings). */
export interface CliToolOptions {
  /** the user (name or uid) the tools, and so the jobs, run as; empty: nsh's user */
  user?: string;
  /** bound for each tool call; default 60 s */
  timeoutMs?: number;
  /** nsh's environment: PATH for the lookup (and what the backend passes on) */
  env?: Record<string, string | undefined>;
  /** one line per tool call (tool, exit, ms); never argv values or environment */
  log?: (line: string) => void;
}

/** What a backend found once: where each tool is, whom they run as, and the scheduler's version. */
export interface Prepared<Tool extends string, Version> {
  paths: Record<Tool, string>;
  ids: UserIds | undefined;
  version: Version;
}

/** The end of a tool call a backend reads. */
export interface ToolOutput {
  code: number;
  stdout: string;
  stderr: string;
}

/** A preparation made once and then cached; a failure is not, so a later call may succeed. */
export class Once<T> {
  private pending: Promise<T> | null = null;
  constructor(private readonly make: () => Promise<T>) {}

  get(): Promise<T> {
    this.pending ??= this.make().catch((e: unknown) => {
      this.pending = null; // tools installed, server back: the next call tries again
      throw e;
    });
    return this.pending;
  }
}

/** The directories of a PATH value, in order. */
export const pathDirs = (searchPath: string): string[] => searchPath.split(":").filter((d) => d !== "");

/** Each tool's first executable regular file in `dirs`; tools found nowhere are left out. */
export function findTools<Tool extends string>(
  tools: readonly Tool[],
  dirs: readonly string[],
): Partial<Record<Tool, string>> {
  const found: Partial<Record<Tool, string>> = {};
  for (const tool of tools) {
    for (const dir of dirs) {
      const file = path.join(dir, tool);
      try {
        fs.accessSync(file, fs.constants.X_OK);
        if (fs.statSync(file).isFile()) {
          found[tool] = file;
          break;
        }
      } catch {}
    }
  }
  return found;
}

/** Whom the jobs run as, for doctor. */
export function runsAs(user: string | undefined, ids: UserIds | undefined): string {
  return ids ? `${user} (uid ${ids.uid}, gid ${ids.gid})` : "nsh's own user";
}

export interface BackendCall<Tool extends string> {
  /** "pbs-cli", "slurm-cli": starts messages and log lines */
  backend: string;
  prepared: Prepared<Tool, unknown>;
  tool: Tool;
  args: string[];
  env: Record<string, string>;
  stdin?: string | undefined;
  /** the backend's user setting, for messages */
  user?: string | undefined;
  timeoutMs?: number | undefined;
  /** the call as the log line names it (never argv values) */
  logged: string;
  /** what a timed-out call may not have reached ("slurmctld") */
  server: string;
  log: (line: string) => void;
}

export interface RunExtras {
  stdin?: string;
  /** the child's whole environment (the submitting tool's: the job's) */
  env?: Record<string, string>;
}

/** One call of a backend's tool: logged, bounded (a timeout and a tool that cannot start are errors). */
export async function callTool<Tool extends string>(c: BackendCall<Tool>): Promise<ToolOutput> {
  const { prepared: p, tool } = c;
  const timeoutMs = c.timeoutMs ?? 60_000;
  let r: ToolResult;
  try {
    const extras = { ...(c.stdin === undefined ? {} : { stdin: c.stdin }), ...(p.ids ? { ids: p.ids } : {}) };
    r = await runTool({ argv: [p.paths[tool], ...c.args], env: c.env, timeoutMs, ...extras });
  } catch (e) {
    const who = p.ids ? ` as ${c.user} (nsh must run as root to switch user)` : "";
    throw new SchedulerError("config", `${c.backend}: cannot run ${p.paths[tool]}${who}: ${(e as Error).message}`);
  }
  const { code, stdout, stderr, ms, timedOut } = r;
  c.log(`${c.backend}: ${c.logged} -> ${timedOut ? "timed out" : code} in ${ms.toFixed(1)} ms`);
  if (timedOut) {
    throw new SchedulerError("timeout", `${tool} did not finish within ${timeoutMs} ms (is ${c.server} reachable?)`);
  }
  return { code, stdout, stderr };
}
