// One accepted build as a scheduler job, the same for every scheduler: plan the job, submit it,
// follow it until it runs, connect to its agent, send the inputs, build with the log streaming to
// Nix, bring the outputs home under Nix's held output locks, let the agent go.
//
// The job must never outlive the build. Three guards, from the quickest:
//   - a failure here cancels the job before the hook reports it (settle.ts);
//   - SIGTERM (Nix ≥ 2.35, 500 ms before its SIGKILL) interrupts whatever step runs, then the same;
//   - a reaper outside the hook's process group, started before the submit, cancels the job when
//     the hook dies without saying it is done (Nix ≤ 2.34 SIGKILLs the group at once, §1.7);
// and last, the agent in the job ends it when no hook has been connected for a while.
// With pilot-idle-time, a build may run in an idle job of the same shape instead (../pilot.ts).
import type { BuildContext } from "../executor.ts";
import { pilotJobs } from "../pilot.ts";
import { connectAgent } from "./connect.ts";
import { followJob } from "./follow.ts";
import { planBuild } from "./plan.ts";
import { openRun } from "./run.ts";
import { settleError, settleFailedBuild, settleSucceeded } from "./settle.ts";
import { submitJob } from "./submit.ts";
import { buildFailed, buildInJob, download, upload } from "./transfer.ts";

export async function runJobBuild(ctx: BuildContext): Promise<number> {
  const plan = planBuild(ctx);
  const run = await openRun(ctx, plan);
  const pilots = pilotJobs(run);
  // Offering a new K-slot job's other slots asks the scheduler and the reaper: not on the build's path.
  let sharing: Promise<void> | undefined;
  try {
    let pilot = await pilots?.take();
    const submitted = pilot ? undefined : await submitJob(run);
    const followed = submitted && (pilots
      ? await pilots.followOrTake(submitted.id, () => followJob(run, submitted.id))
      : { node: await followJob(run, submitted.id) });
    if (followed && "taken" in followed) pilot = followed.taken;
    const { id, agentPath } = pilot ?? submitted!;
    const node = pilot?.node ?? (followed as { node: string }).node;
    const session = pilot?.session ?? (await connectAgent(run, id, node, agentPath));
    if (!pilot) sharing = pilots?.share({ id, node, agentPath });
    await upload(run, session);
    const result = await buildInJob(run, session);
    await sharing; // settling depends on whether the job is shared
    let status: number;
    if (buildFailed(result)) status = await settleFailedBuild(run, session, id, node, result);
    else {
      await download(run, session);
      status = await settleSucceeded(run, session, id);
    }
    await pilots?.offer({ id, node, agentPath, session }, pilot);
    return status;
  } catch (e) {
    await sharing;
    await pilots?.drop();
    return await settleError(run, e);
  } finally {
    run.close();
  }
}
