// Step 3: the job is followed until it runs, saying why it waits; one that can never start, or
// waits longer than max-queue-wait, fails. Also here: watching a running job for its end, and the
// status of a job that ended (or is ending) under a build.
import { isTerminal, type JobStatus, type Scheduler } from "../../schedulers/scheduler.ts";
import { neverSince, queueVerdict } from "../../schedulers/pending-reason.ts";
import { describeEnd } from "../job-end.ts";
import { firstHost } from "../job-plan.ts";
import { type BuildRun, INFO, Interrupted, JobFailure } from "./run.ts";

/** Waits until job `id` runs; its node. */
export async function followJob(run: BuildRun, id: string): Promise<string> {
  const { ctx, record } = run;
  const node = await run.step(waitUntilRunning(run, id)).finally(() => run.startNotice?.close());
  record.mark("running");
  record.phaseDone("queue");
  record.update({ state: "running", node });
  ctx.log(INFO, `nsh: job ${id} running on ${node}`);
  return node;
}

async function waitUntilRunning({ scheduler: s, ctx, record, startNotice }: BuildRun, id: string): Promise<string> {
  const maxQueueWaitSec = ctx.conf["max-queue-wait"];
  const t0 = Date.now();
  let said = "";
  let never: { reason: string; since: number } | undefined;
  // The job's agent says when it starts (start-notice-host): then the scheduler is asked at once
  // (one request), and its answer is taken if it comes before the next poll's.
  let notice: Promise<JobStatus | undefined> | undefined = startNotice?.arrived.then(() => {
    record.mark("start-noticed");
    return s.statusNow?.(id).catch(() => undefined);
  });
  for (;;) {
    if (ctx.signal.aborted) throw new Interrupted(`job ${id} cancelled: the build was interrupted`);
    const polled = s.status(id);
    let st: JobStatus;
    if (notice) {
      polled.catch(() => {}); // awaited below when the notice's answer is not taken
      const got = await Promise.race([polled.then((x) => ({ x })), notice.then((x) => ({ x, noticed: true }))]);
      if ("noticed" in got) notice = undefined; // asked once
      st = got.x ?? (await polled); // a notice whose request failed: the poll's answer
    } else st = await polled;
    if (st.state === "running" || st.state === "completing") {
      const node = st.nodes ? firstHost(st.nodes) : undefined;
      if (node) return node;
    }
    if (isTerminal(st.state)) throw new Error(`job ${id} ended (${describeEnd(st)}) before nsh could build in it`);
    const state = `${st.state}${st.reason && st.reason !== "None" ? ` (${st.reason})` : ""}`;
    if (state !== said) ctx.log(INFO, `nsh: job ${id} ${state}`);
    said = state;
    never = neverSince(never, st.state === "pending", st.reason, Date.now());
    const neverForMs = never ? Date.now() - never.since : 0;
    const verdict = queueVerdict({ jobId: id, reason: st.reason, waitedMs: Date.now() - t0, neverForMs, maxQueueWaitSec });
    if (verdict) throw new JobFailure(verdict);
    // Slurm cannot tell us when a job starts: ask every 100 ms while a start is likely soon (a
    // status call costs slurmrestd a few ms; doubling steps cost up to 0.8 s of idle allocation
    // per build in the benchmark), then back off to every 2 s for jobs that queue for long.
    const waited = Date.now() - t0;
    const pause = Bun.sleep(waited < 5000 ? 100 : waited < 30000 ? 500 : 2000);
    await (notice ? Promise.race([pause, notice]) : pause);
  }
}

/**
 * The job's status if it ended or is ending (undefined while it runs on): a build whose channels
 * broke because the job was cancelled, timed out or lost its node says that. Slurm shows such a
 * job as COMPLETING for a moment (22.05 hides the base state meanwhile): wait a little for it.
 */
export async function endingJob(s: Scheduler, id: string, withinMs = 3000): Promise<JobStatus | undefined> {
  let end = Date.now() + withinMs;
  let pastLimitSeen = false;
  for (;;) {
    const st = await s.status(id).catch(() => undefined);
    if (!st || st.state === "unknown") return undefined;
    if (isTerminal(st.state)) return st;
    // A job killed at its time limit can still show as running for a while (PBS: until MoM's
    // obituary reaches the server): one past its limit is worth waiting for.
    if (st.state === "running" && pastTimeLimit(st) && !pastLimitSeen) {
      pastLimitSeen = true;
      end = Date.now() + PAST_LIMIT_WAIT_MS;
    }
    if (st.state !== "completing" && !(st.state === "running" && pastLimitSeen)) return undefined;
    if (Date.now() > end) return st.state === "running" ? undefined : st;
    await Bun.sleep(200);
  }
}

/** How long a job still running past its time limit is waited for (its scheduler is ending it). */
const PAST_LIMIT_WAIT_MS = 30_000;

/** Seconds the scheduler's clock may be ahead of this host's. */
const CLOCK_SLACK_S = 10;

/** The job has run (about) as long as its time limit allows (start and limit as the scheduler says). */
export const pastTimeLimit = (st: JobStatus, nowMs = Date.now()): boolean =>
  st.startTime !== null && !!st.timeLimitMinutes &&
  nowMs / 1000 + CLOCK_SLACK_S >= st.startTime + st.timeLimitMinutes * 60;

/** `promise` resolves with the job's status once it has ended (never, while it runs) until stop(). */
export function watchEnd(s: Scheduler, id: string): { promise: Promise<JobStatus>; stop: () => void } {
  let stopped = false;
  const promise = (async () => {
    for (;;) {
      await Bun.sleep(1000);
      if (stopped) return new Promise<never>(() => {});
      const st = await s.status(id).catch(() => undefined);
      if (st && isTerminal(st.state)) return st;
    }
  })();
  return { promise, stop: () => void (stopped = true) };
}
