// The reaper: a detached process per build that cancels its job if the hook dies without saying it
// is done. Nix up to 2.34 SIGKILLs the hook's whole process group when the user interrupts a build
// (nix-protocols.md §1.7), so the cancel must come from outside that group. The hook starts it
// before it submits and talks to it over a pipe (never argv or a file, the JWT is in it):
//   line 1   the order: scheduler settings, credentials, where the job's record is
//   {"jobId":"…"}   as soon as the scheduler named the job
//   done     the hook has finished with the job (it ended it, or the job ended by itself)
// EOF without "done" means the hook is gone: cancel the job (retrying a few times, the scheduler
// may be briefly unreachable) and mark its record cancelled, so `nsh jobs` says what happened.
import type { NshConfig } from "../config/nsh-conf.ts";
import { markRecord } from "./job-record.ts";
import { schedulerFor } from "./schedulers.ts";
import { jobTag } from "./job-plan.ts";
import type { Scheduler } from "../schedulers/scheduler.ts";

export interface ReaperOrder {
  conf: NshConfig;
  /** Credentials the scheduler needs (the JWT), passed in memory only. */
  env: Record<string, string>;
  /** The job's record in the local state directory. */
  record?: { stateDir: string; key: string };
}

/** Pure: what the lines so far say. */
export function readReaperLines(lines: readonly string[]): { order?: ReaperOrder; jobId?: string; done: boolean } {
  const out: { order?: ReaperOrder; jobId?: string; done: boolean } = { done: false };
  for (const line of lines) {
    const l = line.trim();
    if (!l) continue;
    if (l === "done") out.done = true;
    else if (!out.order) out.order = JSON.parse(l) as ReaperOrder;
    else {
      const m = JSON.parse(l) as { jobId?: unknown };
      if (typeof m.jobId === "string") out.jobId = m.jobId;
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
  const scheduler = schedulerFor(order.conf, order.env, () => {});
  let jobIds = said.jobId ? [said.jobId] : [];
  if (jobIds.length === 0) {
    // Killed before the scheduler named a job. A submit request may still have been on its way:
    // look for the job by its tag for a few seconds (slurmctld may register it a moment later).
    jobIds = order.record ? await findInFlight(scheduler, jobTag(order.record.key)) : [];
    if (jobIds.length === 0) {
      if (order.record) markRecord(order.record.stateDir, order.record.key, { state: "cancelled", message: "the hook was killed before the job was submitted" });
      return 0;
    }
  }
  let failed = 0;
  for (const id of jobIds) failed += await cancelWithRetries(scheduler, id, order);
  return failed > 0 ? 1 : 0;
}

/** Polls for jobs carrying `tag` for up to ~5 s; empty when none appeared. */
async function findInFlight(scheduler: Scheduler, tag: string): Promise<string[]> {
  if (!scheduler.findTagged) return [];
  for (const wait of [0, 250, 500, 1000, 1500, 2000]) {
    await Bun.sleep(wait);
    const found = await scheduler.findTagged(tag).catch(() => []);
    if (found.length > 0) return found;
  }
  return [];
}

async function cancelWithRetries(scheduler: Scheduler, jobId: string, order: ReaperOrder): Promise<number> {
  let lastError = "";
  for (let attempt = 0; attempt < 6; attempt++) {
    try {
      await scheduler.cancel(jobId);
      if (order.record) markRecord(order.record.stateDir, order.record.key, { state: "cancelled", message: "the build was interrupted (the hook was killed); nsh's reaper cancelled the job" });
      return 0;
    } catch (e) {
      lastError = (e as Error).message;
      await Bun.sleep(500 * (attempt + 1));
    }
  }
  if (order.record) markRecord(order.record.stateDir, order.record.key, { message: `the hook was killed and cancelling job ${jobId} failed: ${lastError}; its agent ends it once it notices no hook` });
  return 1;
}
