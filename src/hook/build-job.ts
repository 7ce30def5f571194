// One accepted build as a scheduler job: place the agent, submit, follow the job (pending reason,
// node), send the inputs to the node, build inside the job with the log streaming to Nix, bring the
// outputs home under Nix's held output locks, let the agent go.
//
// The job must never outlive the build. Three guards, from the quickest:
//   - a failure here cancels the job before the hook reports it;
//   - SIGTERM (Nix ≥ 2.35, 500 ms before its SIGKILL) interrupts whatever step runs, then the same;
//   - a reaper outside the hook's process group, started before the submit, cancels the job when
//     the hook dies without saying it is done (Nix ≤ 2.34 SIGKILLs the group at once, §1.7);
// and last, the agent in the job ends it when no hook has been connected for a while.
import fs from "node:fs";
import { parseStatusLine, type AgentMode } from "../agent/protocol.ts";
import { parseDerivation } from "../nix/derivation.ts";
import { ServeClient } from "../nix/serve-client.ts";
import { DEFAULT_BUILD_OPTIONS, basicDerivation } from "../nix/serve-protocol.ts";
import { hookFailureStatus, importMethod, parseNixVersion, type NixVersion } from "../nix/version.ts";
import { copyClosure } from "../remote/copy.ts";
import { parseDestination, type Destination } from "../remote/destination.ts";
import { openLocalServe } from "../remote/open-store.ts";
import { SshPool, shellQuote } from "../remote/ssh.ts";
import { sshPoolOptions } from "../remote/ssh-options.ts";
import { isTerminal, mayHaveSubmitted, type JobStatus, type Scheduler } from "../schedulers/scheduler.ts";
import { SlurmRestScheduler } from "../schedulers/slurm-rest.ts";
import { neverSince, queueVerdict } from "../schedulers/pending-reason.ts";
import { ensureStateDir } from "../state/dir.ts";
import { agentPathOnCluster, ensureAgent } from "./agent-binary.ts";
import { fileMemo } from "../state/memo.ts";
import { localNarReader, localStoreUri } from "../remote/local-nar.ts";
import { copyProgress } from "./copy-progress.ts";
import { nodeBulk, type NodeBulk } from "./node-bulk.ts";
import { lineReader, openAgentChannel } from "./agent-channels.ts";
import type { BuildContext } from "./executor.ts";
import { JobLog } from "./job-record.ts";
import { TIMED_OUT, describeEnd, jobEndVerdict, plainText, remoteFailure } from "./job-end.ts";
import { buildLimits, firstHost, jobDir, jobOutputFile, jobSpec, derivationParams } from "./job-plan.ts";
import { PARAMS_ATTR, schedulerFor } from "./schedulers.ts";
import { startReaper, type Reaper } from "./reaper.ts";

const INFO = 3;
const ERROR = 0;
/** How long a hook trusts that an earlier one placed the agent binary (it is checked on every build anyway). */
const AGENT_MEMO_LIFETIME_MS = 24 * 3600_000;

/** The build was interrupted (SIGTERM): the job is being cancelled, nothing else to report. */
class Interrupted extends Error {}

/** A failure whose message already says all (no "job N:" prefix needed); `status` is the hook's exit status. */
class JobFailure extends Error {
  constructor(
    message: string,
    readonly status = 1,
  ) {
    super(message);
  }
}

export async function runJobBuild(ctx: BuildContext): Promise<number> {
  const { conf, req } = ctx;
  const env = ctx.env ?? process.env;
  const clusterState = conf["slurm-state-dir"];
  if (!clusterState) throw new Error("nsh.conf: slurm-state-dir is not set (where jobs keep their files on the cluster)");
  const localState = conf["state-dir"] || ensureStateDir(env);
  const drv = parseDerivation(fs.readFileSync(req.drvPath, "utf8"));
  const paramsAttr = PARAMS_ATTR[conf["job-scheduler"]] ?? "extraSlurmParams";
  // A malformed parameters attribute, or a key it may not set, is the derivation's fault: fail before any submit.
  derivationParams(drv, req.drvPath, paramsAttr, conf["derivation-params-allow"]);
  const key = `${Date.now().toString(36)}-${process.pid}`;
  const dir = jobDir(clusterState, key);
  // The scheduler's request lines are for debugging; its other lines (token file readable by
  // others, Slurm's submit warnings) are warnings.
  const scheduler = schedulerFor(conf, env, (line) => (/^slurm: [A-Z]+ \//.test(line) ? ctx.log(6, `nsh: ${line}`) : ctx.log(1, `nsh: warning: ${line}`)), localState);
  const pool = new SshPool(sshPoolOptions(conf, { warn: (m) => ctx.log(1, `nsh: ${m}`) }));
  const record = new JobLog(localState, { key, drv: req.drvPath, scheduler: scheduler.describe(), state: "submitting", submittedAt: Date.now(), phases: {}, marks: { hook: Math.round(performance.timeOrigin) }, hookPid: process.pid });
  const reaper = startReaper(conf, env, { stateDir: localState, key }, (m) => ctx.log(1, `nsh: warning: ${m}`));

  // Every step races SIGTERM: the build is abandoned at once, whatever it waits for.
  const interrupted = Promise.withResolvers<never>();
  interrupted.promise.catch(() => {});
  const onAbort = () => interrupted.reject(new Interrupted("the build was interrupted"));
  if (ctx.signal.aborted) onAbort();
  else ctx.signal.addEventListener("abort", onAbort, { once: true });
  const step = <T>(p: Promise<T>): Promise<T> => Promise.race([p, interrupted.promise]);

  let jobId: string | undefined;
  let submitting: Promise<{ id: string }> | undefined;
  let node: string | undefined;
  let localReady: Promise<ServeClient> | undefined;
  let bulk: NodeBulk | undefined;
  // Resolves once the agent said hello: a serve channel that came too early tries again directly.
  const heard = Promise.withResolvers<void>();
  heard.promise.catch(() => {});
  // Nix's version (how outputs are imported, which exit status says what), asked while the job starts.
  const nixVersion = localNixVersion(env);
  nixVersion.catch(() => {});
  try {
    const login = parseDestination(conf["login-host"] || conf["slurm-api-host"]);
    // The ssh check of the agent binary runs for every build, but once an earlier build placed it,
    // the job is submitted without waiting for that round trip (the job makes its own directory).
    const agent = await step(agentPathOnCluster(clusterState, localState));
    const agentPath = agent.bin;
    const agentPlaced = ensureAgent(pool, login, agent, dir);
    agentPlaced.catch(() => {});
    const placedMemo = fileMemo<string>(localState, "agent-placed", AGENT_MEMO_LIFETIME_MS);
    const memoKey = `${login.text} ${clusterState}`;
    const placedBefore = placedMemo.get(memoKey) === agentPath;
    // A wrong token or an unreachable slurmrestd is said at once, not after the agent's upload.
    if (scheduler instanceof SlurmRestScheduler) await step(scheduler.negotiate());
    record.mark("negotiated");
    if (!placedBefore) {
      if ((await step(agentPlaced)).uploaded) record.mark("agent-uploaded");
      placedMemo.set(memoKey, agentPath);
      record.mark("agent-placed");
    }
    const limits = buildLimits(ctx.settings);
    const spec = jobSpec({ drvPath: req.drvPath, drv, stateDir: clusterState, key, agentPath, remoteStore: conf["remote-store"], nixBinDir: conf["remote-nix-bin-dir"], collectGarbage: conf["collect-garbage"], buildTimeout: limits.buildTimeout, paramsAttr, paramsAllow: conf["derivation-params-allow"], environment: conf["job-environment"], storeDir: conf["store-dir"], systemFeatures: [...new Set([...conf["system-features"], ...conf["mandatory-system-features"]])] });
    reaper.submitting();
    submitting = scheduler.submit(spec);
    let { id } = await step(submitting);
    jobId = id;
    record.mark("submitted");
    reaper.job(id);
    if (placedBefore) {
      const placed = await step(agentPlaced);
      record.mark("agent-placed");
      if (placed.uploaded) record.mark("agent-uploaded");
      if (placed.wasMissing) {
        // The memo was stale (the cluster's state directory was cleaned): the job may have started
        // without its binary. Replace it with one that finds the binary.
        ctx.log(INFO, `nsh: the agent binary was missing on ${login.text}; ${placed.uploaded ? "placed it again" : "another build placed it again"} and resubmitting job ${id}`);
        await step(scheduler.cancel(id));
        reaper.submitting();
        submitting = scheduler.submit(spec);
        ({ id } = await step(submitting));
        jobId = id;
        reaper.job(id);
      }
      placedMemo.set(memoKey, agentPath);
    }
    // The local half starts while Slurm schedules: a local `nix-store --serve`, and Nix's version
    // (how the outputs are imported). Neither is then on the path once the job runs.
    localReady = openLocalServe({ env });
    localReady.catch(() => {});
    const methodReady = nixVersion.then(importMethod);
    methodReady.catch(() => {});
    record.update({ jobId: id, state: "pending" });
    ctx.log(INFO, `nsh: submitted job ${id} for ${req.drvPath} (${scheduler.describe()})`);
    node = await step(waitUntilRunning(scheduler, id, ctx, conf["max-queue-wait"]));
    record.mark("running");
    record.phaseDone("queue");
    record.update({ state: "running", node });
    ctx.log(INFO, `nsh: job ${id} running on ${node}`);

    // Two channels to the agent on the job's node: the build log, and a serve protocol session.
    const nodeDest = parseDestination(node);
    const open = (mode: AgentMode, listening?: Promise<void>) => step(openAgentChannel(pool, nodeDest, agentPath, dir, mode, listening)).catch((e: Error) => failOnNode(e, node!));
    // Both channels at once: the serve session's bridge and the node's nix-store start while the
    // agent says hello (an agent that cannot build ends the serve session; hello says why).
    const logOpening = open("log");
    const serving = open("serve", heard.promise).then((d) => ServeClient.open(d, storeDirOf(req.drvPath), `job ${id} on ${node}`));
    bulk = nodeBulk({ pool, node: nodeDest, remoteStore: conf["remote-store"], nixBinDir: conf["remote-nix-bin-dir"] || undefined, environment: conf["job-environment"], storeDir: storeDirOf(req.drvPath), remoteStoreDir: conf["store-dir"], minBytes: conf["openssh-min-size"], label: `job ${id} on ${node} (OpenSSH)`, log: (m) => ctx.log(INFO, `nsh: ${m}`) });
    serving.catch(() => {});
    const log = await logOpening;
    record.mark("log-channel");
    const lines = lineReader(log.stdout);
    // The agent's first line says whether it can build here; if the job died first, say why.
    const ended = watchEnd(scheduler, id);
    const status = await step(Promise.race([lines.next(), ended.promise])).finally(ended.stop);
    if (status !== undefined && typeof status !== "string") throw await endedFailure(pool, login, dir, id, status);
    if (status === undefined) throw new JobFailure(`the agent of job ${id} on ${node} did not answer: ${log.stderrTail().trim() || "its channel closed"}`);
    const hello = parseStatusLine(status);
    if (!hello) throw new JobFailure(`the agent of job ${id} on ${node} did not answer (${status.trim() || log.stderrTail().trim() || "no output"})`);
    if (!hello.ok) throw new JobFailure(`job ${id} on ${node} cannot build: ${hello.error}`);
    record.mark("hello");
    heard.resolve();
    // Resolves true when the agent says goodbye (it ends the job itself), false if the channel just ends.
    const logDone = (async () => {
      for (let l = await lines.next(); l !== undefined; l = await lines.next()) {
        if (l === "bye") return true;
        ctx.buildLog(l);
      }
      return false;
    })();
    const remote = await step(serving);
    record.mark("remote-serve");
    const local = await step(localReady);
    record.mark("local-serve");
    const progress = copyProgress();
    // Inputs are read from the local store's files when we can (no pipe from a local nix-store).
    const readLocalNar = localNarReader(localStoreUri(undefined, env));
    await step(copyClosure(local, { kind: "serve", client: remote }, ctx.inputs, { progress, readLocalNar, log: (m) => ctx.log(INFO, `nsh: ${m}`), bulk: bulk.deps("to") }));
    record.mark("uploaded");
    record.phaseDone("upload");

    const result = await step(remote.buildDerivation(req.drvPath, basicDerivation(drv, ctx.inputs), { ...DEFAULT_BUILD_OPTIONS, maxSilentTime: limits.maxSilentTime, buildTimeout: limits.buildTimeout, maxLogSize: limits.maxLogSize }));
    record.phaseDone("build");
    if (result.status > 2 && result.status !== 13) {
      ctx.log(ERROR, `nsh: job ${id} on ${node}: build of ${req.drvPath} failed: ${result.statusName}: ${result.errorMsg}`);
      const bye = await finish(log, [remote, local, bulk], logDone);
      record.update({ state: "failed", message: plainText(result.errorMsg) });
      if (bye) await reaper.done();
      else await settleJob(scheduler, id, reaper);
      return hookFailureStatus(await nixVersion.catch(() => undefined), remoteFailure(result.statusName));
    }
    const outputs = ctx.wantedOutputs.map((o) => drv.outputs.get(o)?.path).filter((p): p is string => !!p);
    record.mark("built");
    const method = await step(methodReady);
    record.mark("import-method");
    await step(copyClosure(remote, { kind: "import", name: "local store", store: { store: "local", env }, method, heldLocks: outputs, client: local }, outputs, { progress, bulk: bulk.deps("from") }));
    record.mark("imported");
    record.phaseDone("download");
    const bye = await finish(log, [remote, local, bulk], logDone);
    record.mark("bye");
    record.update({ state: "succeeded" });
    // The agent ends the job by itself once it has said goodbye; otherwise end it here.
    if (bye) await reaper.done();
    else await settleJob(scheduler, id, reaper);
    record.mark("settled");
    record.update({});
    return 0;
  } catch (e) {
    const aborted = e instanceof Interrupted || ctx.signal.aborted;
    let message = (e as Error).message;
    let status = e instanceof JobFailure ? e.status : 1;
    // A job that died under the build (time limit, node failure, scancel) explains the failure.
    if (jobId && !aborted && !(e instanceof JobFailure)) {
      const st = await endingJob(scheduler, jobId);
      if (st) ({ message, status } = jobEndVerdict(jobId, st, "while nsh built in it", message));
    }
    // Interrupted while the submit was on its way: the job may exist a moment later. If the answer
    // does not come, or says nothing definite (timeout), the reaper looks for the job by its tag.
    let submitMayStillCreate = false;
    if (!jobId && submitting) {
      const failed = submitting.catch((err: unknown) => ({ err }));
      const answer = await Promise.race([failed, Bun.sleep(2000).then(() => undefined)]);
      if (answer && "id" in answer) jobId = answer.id;
      else submitMayStillCreate = !answer || mayHaveSubmitted(answer.err);
    }
    record.update({ state: aborted ? "cancelled" : "failed", message, ...(jobId ? { jobId } : {}) });
    let cancelled = false;
    if (jobId) {
      reaper.job(jobId);
      cancelled = await settleJob(scheduler, jobId, reaper);
      if (!cancelled && !aborted) ctx.log(1, `nsh: warning: could not cancel job ${jobId}; nsh's reaper keeps trying after the hook exits`);
    } else if (!submitMayStillCreate) await reaper.done();
    if (aborted) throw new Error(`interrupted; ${!jobId ? (submitMayStillCreate ? "the submit was on its way: nsh's reaper cancels its job if one appears" : "no job was submitted") : cancelled ? `job ${jobId} cancelled` : `cancelling job ${jobId} failed, nsh's reaper keeps trying`}`);
    // Out of time (the job's limit): a timed-out build to Nix, not just a failed one.
    if (status === TIMED_OUT) {
      ctx.log(ERROR, `nsh: error: building '${req.drvPath}' on '${ctx.machine}' failed: ${message}`);
      return hookFailureStatus(await nixVersion.catch(() => undefined), "timed-out");
    }
    throw e instanceof JobFailure || message !== (e as Error).message ? new JobFailure(message) : e;
  } finally {
    heard.reject(new Error("the agent never said hello"));
    ctx.signal.removeEventListener("abort", onAbort);
    void localReady?.then((c) => c.close(), () => {});
    void bulk?.close();
    pool.close();
  }
}

/** The local Nix's version: how outputs are imported, and the exit status of a failed build. */
async function localNixVersion(env: Record<string, string | undefined>): Promise<NixVersion> {
  const p = Bun.spawn(["nix-store", "--version"], { env: env as Record<string, string>, stdout: "pipe", stderr: "ignore" });
  return parseNixVersion(await new Response(p.stdout).text());
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

/** An ssh failure on the job's node, said as such: the job is what the user looks for. */
function failOnNode(e: Error, node: string): never {
  if (e instanceof Interrupted) throw e;
  throw new Error(`cannot reach the job's node ${node} over ssh (check ssh-config and that the compute nodes accept ssh from here): ${e.message}`);
}

/** Follows the job until it runs, saying why it waits; one that can never start, or waits too long, fails. */
async function waitUntilRunning(s: Scheduler, id: string, ctx: BuildContext, maxQueueWaitSec: number): Promise<string> {
  const t0 = Date.now();
  let said = "";
  let never: { reason: string; since: number } | undefined;
  for (;;) {
    if (ctx.signal.aborted) throw new Interrupted(`job ${id} cancelled: the build was interrupted`);
    const st = await s.status(id);
    if (st.state === "running" || st.state === "completing") {
      const node = st.nodes ? firstHost(st.nodes) : undefined;
      if (node) return node;
    }
    if (isTerminal(st.state)) throw new Error(`job ${id} ended (${describeEnd(st)}) before nsh could build in it`);
    const now = `${st.state}${st.reason && st.reason !== "None" ? ` (${st.reason})` : ""}`;
    if (now !== said) ctx.log(INFO, `nsh: job ${id} ${now}`);
    said = now;
    never = neverSince(never, st.state === "pending", st.reason, Date.now());
    const neverForMs = never ? Date.now() - never.since : 0;
    const verdict = queueVerdict({ jobId: id, reason: st.reason, waitedMs: Date.now() - t0, neverForMs, maxQueueWaitSec });
    if (verdict) throw new JobFailure(verdict);
    // Slurm cannot tell us when a job starts: ask every 100 ms while a start is likely soon (a
    // status call costs slurmrestd a few ms; doubling steps cost up to 0.8 s of idle allocation
    // per build in the benchmark), then back off to every 2 s for jobs that queue for long.
    const waited = Date.now() - t0;
    await Bun.sleep(waited < 5000 ? 100 : waited < 30000 ? 500 : 2000);
  }
}

/**
 * The job's status if it ended or is ending (undefined while it runs on): a build whose channels
 * broke because the job was cancelled, timed out or lost its node says that. Slurm shows such a
 * job as COMPLETING for a moment (22.05 hides the base state meanwhile): wait a little for it.
 */
async function endingJob(s: Scheduler, id: string, withinMs = 3000): Promise<JobStatus | undefined> {
  const end = Date.now() + withinMs;
  for (;;) {
    const st = await s.status(id).catch(() => undefined);
    if (!st || st.state === "unknown") return undefined;
    if (isTerminal(st.state)) return st;
    if (st.state !== "completing") return undefined;
    if (Date.now() > end) return st;
    await Bun.sleep(200);
  }
}

/** `promise` resolves with the job's status once it has ended (never, while it runs) until stop(). */
function watchEnd(s: Scheduler, id: string): { promise: Promise<JobStatus>; stop: () => void } {
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

/** The job ended before its agent answered: its output file says why. */
async function endedFailure(pool: SshPool, login: Destination, dir: string, id: string, st: JobStatus): Promise<JobFailure> {
  const out = await pool.runCommand(login, `tail -c 2000 ${shellQuote(jobOutputFile(dir))}`).catch(() => undefined);
  const text = out?.stdout.trim();
  const v = jobEndVerdict(id, st, "before its agent answered");
  return new JobFailure(`${v.message}${text ? `; the job's output:\n${text}` : ""}`, v.status);
}

function storeDirOf(drvPath: string): string {
  return drvPath.slice(0, drvPath.lastIndexOf("/"));
}

/** The agent may go: the outputs are home. The serve sessions end first, then the agent hears "done". True when it said goodbye (it ends the job itself). */
async function finish(log: { write(b: Uint8Array): Promise<void>; close(): void }, sessions: Array<{ close(): Promise<void> }>, logDone: Promise<boolean>): Promise<boolean> {
  await Promise.allSettled(sessions.map((s) => s.close()));
  await log.write(new TextEncoder().encode("done\n")).catch(() => {});
  const bye = await Promise.race([logDone, Bun.sleep(3000).then(() => false)]);
  log.close();
  return bye;
}
