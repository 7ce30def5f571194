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
import { markRecord } from "./job-record.ts";
import { jobTag } from "./job-plan.ts";
import { openPoliteScheduler } from "../schedulers/polite-open.ts";
import { schedulerModule } from "../schedulers/registry.ts";
import { ensureStateDir } from "../state/dir.ts";
import { isTerminal, type Scheduler } from "../schedulers/scheduler.ts";

/** Beyond the submit request's own bound: slurmctld may register the job a moment after slurmrestd gave up. */
const SUBMIT_SLACK_MS = 5000;
/** Bound on the whole effort to have a job cancelled (the agent in the job ends it at last anyway). */
const CANCEL_WITHIN_MS = 120_000;

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
  const { order } = said;
  // Through the machine's job broker: the cancels of many reapers (a wide build interrupted) go out
  // in one cancelMany, under the same rate budget as every hook's requests.
  const stateDir = order.record?.stateDir ?? (order.conf["state-dir"] || ensureStateDir());
  const scheduler = await openPoliteScheduler(order.conf, order.env, { log: () => {}, stateDir });
  const tag = order.record ? jobTag(order.record.key) : undefined;
  let jobIds = said.jobId ? [said.jobId] : [];
  // A job the hook submitted but had not named yet (killed as the answer arrived) carries the tag too.
  if (jobIds.length > 0 && tag && scheduler.findTagged) {
    jobIds = [...new Set([...jobIds, ...(await scheduler.findTagged(tag).catch(() => []))])];
  }
  if (jobIds.length === 0) {
    // Killed before the scheduler named a job: a submit on its way may still create it, until its request times out.
    const windowMs = (scheduler.requestTimeoutMs ?? 20_000) + SUBMIT_SLACK_MS;
    jobIds = tag && said.submitting ? await findInFlight(scheduler, tag, windowMs) : [];
    if (jobIds.length === 0) {
      const message = "the hook was killed before the job was submitted";
      if (order.record) markRecord(order.record.stateDir, order.record.key, { state: "cancelled", message });
      return 0;
    }
  }
  let failed = 0;
  for (const id of jobIds) failed += await cancelWithRetries(scheduler, id, order);
  return failed > 0 ? 1 : 0;
}

/** Polls for jobs carrying `tag` for `windowMs`; empty when none appeared. */
async function findInFlight(scheduler: Scheduler, tag: string, windowMs: number): Promise<string[]> {
  if (!scheduler.findTagged) return [];
  const end = Date.now() + windowMs;
  for (let wait = 250; ; wait = Math.min(wait * 2, 2000)) {
    const found = await scheduler.findTagged(tag).catch(() => []);
    if (found.length > 0) return found;
    if (Date.now() >= end) return [];
    await Bun.sleep(Math.min(wait, end - Date.now()));
  }
}

/** Cancels until the scheduler shows the job ended (or ending, or forgotten), within CANCEL_WITHIN_MS. */
async function cancelWithRetries(scheduler: Scheduler, jobId: string, order: ReaperOrder): Promise<number> {
  let lastError = "";
  const end = Date.now() + CANCEL_WITHIN_MS;
  for (let wait = 500; ; wait = Math.min(wait * 2, 8000)) {
    try {
      await scheduler.cancel(jobId);
      const st = await scheduler.status(jobId);
      if (isTerminal(st.state) || st.state === "completing") {
        const message = "the build was interrupted (the hook was killed); nsh's reaper cancelled the job";
        if (order.record) markRecord(order.record.stateDir, order.record.key, { state: "cancelled", message });
        return 0;
      }
      lastError = `the job is still ${st.rawState.join("+") || st.state} after the cancel`;
    } catch (e) {
      lastError = (e as Error).message;
    }
    if (Date.now() + wait > end) break;
    await Bun.sleep(wait);
  }
  const message =
    `the hook was killed and cancelling job ${jobId} failed: ${lastError}; its agent ends it once it notices no hook`;
  if (order.record) markRecord(order.record.stateDir, order.record.key, { message });
  return 1;
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

export function startReaper(
  conf: NshConfig,
  env: Record<string, string | undefined>,
  record: { stateDir: string; key: string },
  warn: (m: string) => void,
): Reaper {
  let proc: Subprocess<"pipe", "ignore", "ignore">;
  try {
    proc = Bun.spawn([...selfCommand(), "__job-reaper"], { detached: true, stdin: "pipe", stdout: "ignore", stderr: "ignore" });
  } catch (e) {
    // Build anyway: without a reaper only a killed hook leaves its job to the agent's own timeout.
    warn(`cannot start the job reaper (${(e as Error).message}); if this build is interrupted, its job ends only when its agent notices`);
    return { submitting() {}, job() {}, done: async () => {} };
  }
  const secrets: Record<string, string> = {};
  for (const name of schedulerModule(conf["job-scheduler"])?.secretEnv ?? []) {
    const value = env[name];
    if (value) secrets[name] = value;
  }
  let finished = false;
  const send = (line: string) => {
    if (finished) return;
    try {
      proc.stdin.write(`${line}\n`);
      void Promise.resolve(proc.stdin.flush()).catch(() => {});
    } catch {}
  };
  send(JSON.stringify({ conf, env: secrets, record }));
  proc.unref();
  return {
    submitting: () => send(JSON.stringify({ submitting: true })),
    job: (id) => send(JSON.stringify({ jobId: id })),
    async done() {
      if (finished) return;
      send("done");
      finished = true;
      try {
        await Promise.resolve(proc.stdin.end()).catch(() => {});
      } catch {}
      // The hook exits right after: make sure the word arrived (the reaper exits on it at once).
      await Promise.race([proc.exited, Bun.sleep(1000)]);
    },
  };
}
