// The reaper's work once its hook died without saying "done" (reaper.ts): cancel the hook's job, or
// find it by its tag when the hook was killed while its submit was on its way. Loaded only then.
import { openPoliteScheduler } from "../schedulers/polite-open.ts";
import { isTerminal, type Scheduler } from "../schedulers/scheduler.ts";
import { ensureStateDir } from "../state/dir.ts";
import { jobTag } from "./job-plan.ts";
import { markRecord } from "./job-record.ts";
import type { ReaperOrder } from "./reaper.ts";

/** Beyond the submit request's own bound: slurmctld may register the job a moment after slurmrestd gave up. */
const SUBMIT_SLACK_MS = 5000;
/** Bound on the whole effort to have a job cancelled (the agent in the job ends it at last anyway). */
const CANCEL_WITHIN_MS = 120_000;

export async function reap(order: ReaperOrder, said: { jobId?: string; submitting?: true }): Promise<number> {
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

