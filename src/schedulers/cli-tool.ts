// Running one of a scheduler's command-line tools (slurm-cli, pbs-cli): from argv, never a shell;
// the environment is the caller's (nothing of nsh's own leaks into a job); optionally as another
// user (Bun.spawn's uid/gid: nsh must be root); bounded in time.
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
