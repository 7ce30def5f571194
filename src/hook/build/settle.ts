// Step 6: the job ends with the build. After a build (good or failed) the agent is let go: the
// serve sessions end, it hears "done", says goodbye and ends its job itself; otherwise nsh cancels
// the job. After a failure anywhere the job is cancelled before the hook reports it, and a job that
// died under the build (time limit, lost node, scancel) explains the failure. The reaper stands
// down only once the job is known to be ending.
import type { BuildResult } from "../../nix/serve-protocol.ts";
import { hookFailureStatus } from "../../nix/version.ts";
import { timeLimitWordsOf } from "../../schedulers/registry.ts";
import { mayHaveSubmitted, type Scheduler } from "../../schedulers/scheduler.ts";
import { TIMED_OUT, failedBuildMessage, jobEndVerdict, plainText, remoteFailure } from "../job-end.ts";
import { buildLimits } from "../job-plan.ts";
import type { Reaper } from "../reaper.ts";
import type { AgentSession } from "./connect.ts";
import { endingJob } from "./follow.ts";
import { type BuildRun, ERROR, Interrupted, JobFailure } from "./run.ts";

/** The outputs are home: the agent goes, the job ends. */
export async function settleSucceeded(run: BuildRun, s: AgentSession, id: string): Promise<number> {
  const bye = await finish(run, s);
  run.record.mark("bye");
  run.record.update({ state: "succeeded" });
  // The agent ends the job by itself once it has said goodbye; otherwise end it here (a shared job: its slot's agent
  // leaves by itself, ../pilot.ts).
  if (bye || run.sharedJob) await run.reaper.done();
  else await settleJob(run.scheduler, id, run.reaper);
  run.record.mark("settled");
  run.record.update({});
  return 0;
}

/** The build failed in the job: said, the job ends, and Nix gets the failure's status. */
export async function settleFailedBuild(run: BuildRun, s: AgentSession, id: string, node: string, result: BuildResult): Promise<number> {
  const status = hookFailureStatus(await run.nixVersion.catch(() => undefined), remoteFailure(result.statusName));
  const limits = buildLimits(run.ctx.settings);
  const what = failedBuildMessage(run.ctx.req.drvPath, result.statusName, result.errorMsg, limits, status);
  run.ctx.log(ERROR, `nsh: job ${id} on ${node}: ${what}`);
  const bye = await finish(run, s);
  run.record.update({ state: "failed", message: plainText(result.errorMsg) });
  if (bye || run.sharedJob) await run.reaper.done();
  else await settleJob(run.scheduler, id, run.reaper);
  return status;
}

/** Any step failed or was interrupted: the job is cancelled, then the failure reported (thrown, or a status). */
export async function settleError(run: BuildRun, e: unknown): Promise<number> {
  const { ctx, record, reaper, scheduler } = run;
  const aborted = e instanceof Interrupted || ctx.signal.aborted;
  let message = (e as Error).message;
  let status = e instanceof JobFailure ? e.status : 1;
  let jobId = run.jobId;
  // A job that died under the build (time limit, node failure, scancel) explains the failure.
  if (jobId && !aborted && !(e instanceof JobFailure)) {
    const st = await endingJob(scheduler, jobId);
    const words = timeLimitWordsOf(scheduler.kind);
    if (st) ({ message, status } = jobEndVerdict(jobId, st, "while nsh built in it", message, words));
  }
  // Interrupted while the submit was on its way: the job may exist a moment later. If the answer
  // does not come, or says nothing definite (timeout), the reaper looks for the job by its tag.
  let submitMayStillCreate = false;
  if (!jobId && run.submitting) {
    const failed = run.submitting.catch((err: unknown) => ({ err }));
    const answer = await Promise.race([failed, Bun.sleep(2000).then(() => undefined)]);
    if (answer && "id" in answer) jobId = answer.id;
    else submitMayStillCreate = !answer || mayHaveSubmitted(answer.err);
  }
  record.update({ state: aborted ? "cancelled" : "failed", message, ...(jobId ? { jobId } : {}) });
  let cancelled = false;
  if (jobId && run.sharedJob) await reaper.done(); // other builds run in it: only this slot's agent leaves (../pilot.ts)
  else if (jobId) {
    reaper.job(jobId);
    cancelled = await settleJob(scheduler, jobId, reaper);
    if (!cancelled && !aborted) ctx.log(1, `nsh: warning: could not cancel job ${jobId}; nsh's reaper keeps trying after the hook exits`);
  } else if (!submitMayStillCreate) await reaper.done();
  if (aborted) {
    const what = !jobId
      ? submitMayStillCreate
        ? "the submit was on its way: nsh's reaper cancels its job if one appears"
        : "no job was submitted"
      : run.sharedJob
        ? `job ${jobId} goes on for its other builds; this build's agent there leaves by itself`
        : cancelled
          ? `job ${jobId} cancelled`
          : `cancelling job ${jobId} failed, nsh's reaper keeps trying`;
    throw new Error(`interrupted; ${what}`);
  }
  // Out of time (the job's limit): a timed-out build to Nix, not just a failed one.
  if (status === TIMED_OUT) {
    ctx.log(ERROR, `nsh: error: building '${ctx.req.drvPath}' on '${ctx.machine}' failed: ${message}`);
    return hookFailureStatus(await run.nixVersion.catch(() => undefined), "timed-out");
  }
  throw e instanceof JobFailure || message !== (e as Error).message ? new JobFailure(message) : e;
}

/** Cancels the job (a finished one is no error); the reaper stands down only when that worked. */
async function settleJob(scheduler: Scheduler, id: string, reaper: Reaper): Promise<boolean> {
  try {
    await scheduler.cancel(id);
    await reaper.done();
    return true;
  } catch {
    return false;
  }
}

/** The agent may go: the serve sessions end first, then it hears "done". True when it said goodbye (it ends the job itself). */
async function finish(run: BuildRun, s: AgentSession): Promise<boolean> {
  await Promise.allSettled([s.remote, s.local, run.bulk!].map((x) => x.close()));
  await s.log.write(new TextEncoder().encode("done\n")).catch(() => {});
  const bye = await Promise.race([s.logDone, Bun.sleep(3000).then(() => false)]);
  s.log.close();
  return bye;
}
