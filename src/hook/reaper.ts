// The reaper: a detached process per build that cancels its job if the hook dies without saying it
// is done. Nix up to 2.34 SIGKILLs the hook's whole process group when the user interrupts a build
// (nix-protocols.md §1.7), so the cancel must come from outside that group. The hook starts it
// before it submits and talks to it over a pipe (never argv or a file, the JWT is in it):
//   line 1   the order: scheduler settings, credentials, where the job's record is
//   {"submitting":true}   a submit request is about to go out (from then on a job may exist)
//   {"jobId":"…"}   as soon as the scheduler named the job
//   done     the hook has finished with the job (it ended it, or the job ended by itself)
// EOF without "done" means the hook is gone: cancel the job, retrying until the scheduler confirms
// it ended (it may be briefly unreachable), and mark its record cancelled, so `nsh jobs` says what
// happened. A hook killed while its submit request was on its way never heard the job's id: the
// job may appear for as long as that request could still succeed, so look for it by its tag.
import type { Subprocess } from "bun";
import type { NshConfig } from "../config/nsh-conf.ts";
import { selfCommand } from "../util/self.ts";
import { schedulerModule } from "../schedulers/registry.ts";

export interface ReaperOrder {
  conf: NshConfig;
  /** Credentials the scheduler needs (its module's secretEnv: the JWT), passed in memory only. */
  env: Record<string, string>;
  /** The job's record in the local state directory. */
  record?: { stateDir: string; key: string };
}

/** Pure: what the lines so far say. */
export function readReaperLines(lines: readonly string[]): { order?: ReaperOrder; jobId?: string; submitting?: true; done: boolean } {
  const out: { order?: ReaperOrder; jobId?: string; submitting?: true; done: boolean } = { done: false };
  for (const line of lines) {
    const l = line.trim();
    if (!l) continue;
    if (l === "done") out.done = true;
    else if (!out.order) out.order = JSON.parse(l) as ReaperOrder;
    else {
      const m = JSON.parse(l) as { jobId?: unknown; submitting?: unknown };
      if (typeof m.jobId === "string") out.jobId = m.jobId;
      if (m.submitting === true) out.submitting = true;
    }
  }
  return out;
}

export async function runReaper(): Promise<number> {
  const decoder = new TextDecoder();
  let text = "";
  for await (const chunk of Bun.stdin.stream()) {
    text += decoder.decode(chunk, { stream: true });
    if (/(^|\n)done\n/.test(text)) return 0;
  }
  let said: ReturnType<typeof readReaperLines>;
  try {
    said = readReaperLines(text.split("\n"));
  } catch {
    return 2;
  }
  if (said.done || !said.order) return 0;
  // Only a reaper whose hook died needs the scheduler: most reapers exit above, having loaded nothing.
  const { reap } = await import("./reaper-cancel.ts");
  return reap(said.order, said);
}

// The hook's side: start the reaper before the submit, tell it the job, tell it when done.

export interface Reaper {
  /** A submit request is about to go out: if the hook dies before it hears the job's id, look for the job. */
  submitting(): void;
  /** The scheduler named the job: cancel this one if the hook dies. */
  job(id: string): void;
  /** The hook has finished with the job: stand down. Resolves once the reaper heard it (the hook may exit). */
  done(): Promise<void>;
}

/**
 * The build's reaper, started when it is first told something (a build that runs in another build's shared
 * pilot job never tells it anything: no process for it).
 */
export function startReaper(
  conf: NshConfig,
  env: Record<string, string | undefined>,
  record: { stateDir: string; key: string },
  warn: (m: string) => void,
): Reaper {
  let proc: Subprocess<"pipe", "ignore", "ignore"> | null | undefined;
  let finished = false;
  const started = (): Subprocess<"pipe", "ignore", "ignore"> | null => {
    if (proc !== undefined) return proc;
    try {
      const stdio = { stdin: "pipe", stdout: "ignore", stderr: "ignore" } as const;
      proc = Bun.spawn([...selfCommand(), "__job-reaper"], { detached: true, ...stdio });
    } catch (e) {
      // Build anyway: without a reaper only a killed hook leaves its job to the agent's own timeout.
      const then = "if this build is interrupted, its job ends only when its agent notices";
      warn(`cannot start the job reaper (${(e as Error).message}); ${then}`);
      return (proc = null);
    }
    proc.unref();
    const secrets: Record<string, string> = {};
    for (const name of schedulerModule(conf["job-scheduler"])?.secretEnv ?? []) {
      const value = env[name];
      if (value) secrets[name] = value;
    }
    write(proc, JSON.stringify({ conf, env: secrets, record }));
    return proc;
  };
  const send = (line: string) => {
    if (finished) return;
    const p = started();
    if (p) write(p, line);
  };
  return {
    submitting: () => send(JSON.stringify({ submitting: true })),
    job: (id) => send(JSON.stringify({ jobId: id })),
    async done() {
      if (finished) return;
      finished = true;
      if (!proc) return; // never started (nothing to stand down), or could not be
      write(proc, "done");
      try {
        await Promise.resolve(proc.stdin.end()).catch(() => {});
      } catch {}
      // The hook exits right after: make sure the word arrived (the reaper exits on it at once).
      await Promise.race([proc.exited, Bun.sleep(1000)]);
    },
  };
}

function write(proc: Subprocess<"pipe", "ignore", "ignore">, line: string): void {
  try {
    proc.stdin.write(`${line}\n`);
    void Promise.resolve(proc.stdin.flush()).catch(() => {});
  } catch {}
}
