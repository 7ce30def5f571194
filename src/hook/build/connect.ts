// Step 4: nsh reaches the agent in the running job. Two channels to the job's node, opened at
// once: the build log, and a serve protocol session (its bridge and the node's nix-store start
// while the agent says hello; an agent that cannot build ends the serve session, hello says why).
// The agent's first line says whether it can build there; if the job died first, its output
// file says why. Then the local serve session this build copies from and into.
import { type AgentMode, parseStatusLine } from "../../agent/protocol.ts";
import { ServeClient } from "../../nix/serve-client.ts";
import { type Destination, parseDestination } from "../../remote/destination.ts";
import { type SshDuplex, type SshPool, shellQuote } from "../../remote/ssh.ts";
import { loginHostOf, timeLimitWordsOf } from "../../schedulers/registry.ts";
import type { JobStatus, TimeLimitWords } from "../../schedulers/scheduler.ts";
import type { ProgressSink } from "../../util/progress.ts";
import { lineReader, openAgentChannel } from "../agent-channels.ts";
import { copyProgress } from "../copy-progress.ts";
import { jobEndVerdict } from "../job-end.ts";
import { jobOutputFile } from "../job-plan.ts";
import { nodeBulk } from "../node-bulk.ts";
import { watchEnd } from "./follow.ts";
import { storeDirOf } from "./plan.ts";
import { type BuildRun, INFO, Interrupted, JobFailure } from "./run.ts";

/** The build's sessions with the job's agent and the local store. */
export interface AgentSession {
  /** the log channel: the build's log lines come in, "done" goes out */
  log: SshDuplex;
  /** resolves true when the agent says goodbye (it ends the job itself), false if the channel just ends */
  logDone: Promise<boolean>;
  remote: ServeClient;
  local: ServeClient;
  /** the copies both ways, shown as Nix activities */
  progress: ProgressSink;
}

/**
 * `socketWaitSec`: how long the node may wait for the agent's socket to appear (a job just started);
 * 0 for a pilot, whose agent listens already or has left.
 */
export async function connectAgent(
  run: BuildRun, id: string, node: string, agentPath: string, socketWaitSec?: number,
): Promise<AgentSession> {
  const { ctx, pool, record, step, plan } = run;
  const { conf, req } = ctx;
  const nodeDest = parseDestination(node);
  const open = (mode: AgentMode, listening?: Promise<void>) =>
    step(openAgentChannel(pool, nodeDest, agentPath, plan.dir, mode, listening, socketWaitSec))
      .catch((e: Error) => failOnNode(e, node));
  const logOpening = open("log");
  const serving = open("serve", run.heard.promise).then((d) => ServeClient.open(d, storeDirOf(req.drvPath), `job ${id} on ${node}`));
  run.bulk = nodeBulk({
    pool,
    node: nodeDest,
    remoteStore: conf["remote-store"],
    nixBinDir: conf["remote-nix-bin-dir"] || undefined,
    environment: conf["job-environment"],
    storeDir: storeDirOf(req.drvPath),
    remoteStoreDir: conf["store-dir"],
    minBytes: conf["openssh-min-size"],
    label: `job ${id} on ${node} (OpenSSH)`,
    log: (m) => ctx.log(INFO, `nsh: ${m}`),
  });
  serving.catch(() => {});
  const log = await logOpening;
  record.mark("log-channel");
  const lines = lineReader(log.stdout);
  const ended = watchEnd(run.scheduler, id);
  const status = await step(Promise.race([lines.next(), ended.promise])).finally(ended.stop);
  if (status !== undefined && typeof status !== "string") {
    const words = timeLimitWordsOf(run.scheduler.kind);
    throw await endedFailure(pool, parseDestination(loginHostOf(conf)), plan.dir, id, status, words);
  }
  if (status === undefined) throw new JobFailure(`the agent of job ${id} on ${node} did not answer: ${log.stderrTail().trim() || "its channel closed"}`);
  const hello = parseStatusLine(status);
  if (!hello) throw new JobFailure(`the agent of job ${id} on ${node} did not answer (${status.trim() || log.stderrTail().trim() || "no output"})`);
  if (!hello.ok) throw new JobFailure(`job ${id} on ${node} cannot build: ${hello.error}`);
  record.mark("hello");
  run.heard.resolve();
  const logDone = (async () => {
    for (let l = await lines.next(); l !== undefined; l = await lines.next()) {
      if (l === "bye") return true;
      ctx.buildLog(l);
    }
    return false;
  })();
  const remote = await step(serving);
  record.mark("remote-serve");
  const local = await step(run.localReady!);
  record.mark("local-serve");
  return { log, logDone, remote, local, progress: copyProgress() };
}

/** An ssh failure on the job's node, said as such: the job is what the user looks for. */
function failOnNode(e: Error, node: string): never {
  if (e instanceof Interrupted) throw e;
  throw new Error(`cannot reach the job's node ${node} over ssh (check ssh-config and that the compute nodes accept ssh from here): ${e.message}`);
}

/** The job ended before its agent answered: its output file says why. */
async function endedFailure(
  pool: SshPool, login: Destination, dir: string, id: string, st: JobStatus, words?: TimeLimitWords,
): Promise<JobFailure> {
  const out = await pool.runCommand(login, `tail -c 2000 ${shellQuote(jobOutputFile(dir))}`).catch(() => undefined);
  const text = out?.stdout.trim();
  const v = jobEndVerdict(id, st, "before its agent answered", undefined, words);
  return new JobFailure(`${v.message}${text ? `; the job's output:\n${text}` : ""}`, v.status);
}
