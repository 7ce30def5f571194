// Step 2: the job is submitted. The agent binary is checked (placed when missing) on the login
// host, the scheduler is prepared (a wrong token or an unreachable scheduler is said at once, not
// after the agent's upload), and the reaper hears of the submit before it goes out. Once an earlier
// build placed the agent, the job is submitted without waiting for the ssh check.
import { parseDestination } from "../../remote/destination.ts";
import { openLocalSession } from "./transfer.ts";
import { loginHostOf } from "../../schedulers/registry.ts";
import { prepareScheduler } from "../../schedulers/scheduler.ts";
import { fileMemo } from "../../state/memo.ts";
import { agentPathOnCluster, ensureAgent } from "../agent-binary.ts";
import { planJob } from "./plan.ts";
import { listenForStart } from "./start-listener.ts";
import { type BuildRun, INFO } from "./run.ts";

/** How long a hook trusts that an earlier one placed the agent binary (it is checked on every build anyway). */
const AGENT_MEMO_LIFETIME_MS = 24 * 3600_000;

export interface Submitted {
  id: string;
  /** where the agent binary is on the cluster */
  agentPath: string;
}

export async function submitJob(run: BuildRun): Promise<Submitted> {
  const { ctx, plan, pool, record, reaper, scheduler, step } = run;
  const { conf, req } = ctx;
  const login = parseDestination(loginHostOf(conf));
  const agent = await step(agentPathOnCluster(plan.clusterState, plan.localState));
  const agentPath = agent.bin;
  const agentPlaced = ensureAgent(pool, login, agent, plan.dir);
  agentPlaced.catch(() => {});
  const placedMemo = fileMemo<string>(plan.localState, "agent-placed", AGENT_MEMO_LIFETIME_MS);
  const memoKey = `${login.text} ${plan.clusterState}`;
  const placedBefore = placedMemo.get(memoKey) === agentPath;
  await step(prepareScheduler(scheduler));
  record.mark("negotiated");
  if (!placedBefore) {
    if ((await step(agentPlaced)).uploaded) record.mark("agent-uploaded");
    placedMemo.set(memoKey, agentPath);
    record.mark("agent-placed");
  }
  // Opened before the submit: the job may start (and say so) before the submit's answer comes.
  const noticeHost = conf["start-notice-host"];
  if (noticeHost !== "off") run.startNotice ??= listenForStart(noticeHost, (m) => ctx.log(1, `nsh: warning: ${m}`));
  const spec = planJob(ctx, plan, agentPath, run.startNotice?.target);
  const submit = async () => {
    reaper.submitting();
    run.submitting = scheduler.submit(spec);
    const { id } = await step(run.submitting);
    run.jobId = id;
    return id;
  };
  let id = await submit();
  record.mark("submitted");
  reaper.job(id);
  if (placedBefore) {
    const placed = await step(agentPlaced);
    record.mark("agent-placed");
    if (placed.uploaded) record.mark("agent-uploaded");
    if (placed.wasMissing) {
      // The memo was stale (the cluster's state directory was cleaned): the job may have started
      // without its binary. Replace it with one that finds the binary.
      const again = placed.uploaded ? "placed it again" : "another build placed it again";
      ctx.log(INFO, `nsh: the agent binary was missing on ${login.text}; ${again} and resubmitting job ${id}`);
      await step(scheduler.cancel(id));
      id = await submit();
      reaper.job(id);
    }
    placedMemo.set(memoKey, agentPath);
  }
  // The local half starts while the scheduler schedules: a local `nix-store --serve`, and Nix's
  // version (how the outputs are imported). Neither is then on the path once the job runs.
  run.localReady = openLocalSession(run);
  run.localReady.catch(() => {});
  record.update({ jobId: id, state: "pending" });
  ctx.log(INFO, `nsh: submitted job ${id} for ${req.drvPath} (${scheduler.describe()})`);
  return { id, agentPath };
}
