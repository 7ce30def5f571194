// One accepted build as a scheduler job: place the agent, submit, follow the job (pending reason,
// node), send the inputs to the node, build inside the job with the log streaming to Nix, bring the
// outputs home under Nix's held output locks, let the agent go. A reaper outside the hook's process
// group cancels the job if the hook is killed first.
import fs from "node:fs";
import type { NshConfig } from "../config/nsh-conf.ts";
import { parseDerivation } from "../nix/derivation.ts";
import { ServeClient } from "../nix/serve-client.ts";
import { DEFAULT_BUILD_OPTIONS, basicDerivation } from "../nix/serve-protocol.ts";
import { importMethod, parseNixVersion } from "../nix/version.ts";
import { copyClosure } from "../remote/copy.ts";
import { parseDestination } from "../remote/destination.ts";
import { openLocalServe } from "../remote/open-store.ts";
import { SshPool, shellQuote } from "../remote/ssh.ts";
import { isTerminal, type Scheduler } from "../schedulers/scheduler.ts";
import { ensureStateDir } from "../state/dir.ts";
import { NixActivitySink } from "../util/progress.ts";
import { selfCommand } from "../util/self.ts";
import { ensureAgent } from "./agent-binary.ts";
import type { BuildContext } from "./executor.ts";
import { JobLog } from "./job-record.ts";
import { buildLimits, firstHost, jobDir, jobSpec } from "./job-plan.ts";
import { PARAMS_ATTR, schedulerFor } from "./schedulers.ts";

const INFO = 3;
const ERROR = 0;
export const TIMED_OUT = 101;

export async function runJobBuild(ctx: BuildContext): Promise<number> {
  const { conf, req } = ctx;
  const env = ctx.env ?? process.env;
  const clusterState = conf["slurm-state-dir"];
  if (!clusterState) throw new Error("nsh.conf: slurm-state-dir is not set (where jobs keep their files on the cluster)");
  const localState = conf["state-dir"] || ensureStateDir(env);
  const drv = parseDerivation(fs.readFileSync(req.drvPath, "utf8"));
  const key = `${Date.now().toString(36)}-${process.pid}`;
  const dir = jobDir(clusterState, key);
  const scheduler = schedulerFor(conf, env);
  const pool = new SshPool({ warn: (m) => ctx.log(1, `nsh: ${m}`), ...(conf["ssh-config"] ? { configFile: conf["ssh-config"] } : {}) });
  const record = new JobLog(localState, { key, drv: req.drvPath, scheduler: scheduler.describe(), state: "submitting", submittedAt: Date.now(), phases: {}, hookPid: process.pid });
  let reaper: ReturnType<typeof startReaper> | undefined;
  try {
    const login = parseDestination(conf["login-host"] || conf["slurm-api-host"]);
    const agentPath = await ensureAgent(pool, login, clusterState, localState, dir);
    const limits = buildLimits(ctx.settings);
    const spec = jobSpec({ drvPath: req.drvPath, drv, stateDir: clusterState, key, agentPath, remoteStore: conf["remote-store"], nixBinDir: conf["remote-nix-bin-dir"], collectGarbage: conf["collect-garbage"], buildTimeout: limits.buildTimeout, paramsAttr: PARAMS_ATTR[conf["job-scheduler"]] ?? "extraSlurmParams", environment: conf["job-environment"], storeDir: conf["store-dir"], systemFeatures: [...new Set([...conf["system-features"], ...conf["mandatory-system-features"]])] });
    const { id } = await scheduler.submit(spec);
    record.update({ jobId: id, state: "pending" });
    reaper = startReaper(conf, env, id);
    ctx.log(INFO, `nsh: submitted job ${id} for ${req.drvPath} (${scheduler.describe()})`);
    const node = await waitUntilRunning(scheduler, id, ctx);
    record.phaseDone("queue");
    record.update({ state: "running", node });
    ctx.log(INFO, `nsh: job ${id} running on ${node}`);

    // Two channels to the agent on the job's node: the build log, and a serve protocol session.
    const bridge = (mode: string) => `${[agentPath, "__agent-connect", dir, mode].map(shellQuote).join(" ")}`;
    const nodeDest = parseDestination(node);
    const log = await pool.exec([nodeDest], bridge("log"));
    const logDone = pumpLines(log.stdout, (l) => (l === "bye" ? undefined : ctx.buildLog(l)));
    const remote = await ServeClient.open(await pool.exec([nodeDest], bridge("serve")), storeDirOf(req.drvPath), `job ${id} on ${node}`);
    const local = await openLocalServe({ env });
    const progress = new NixActivitySink();
    await copyClosure(local, { kind: "serve", client: remote }, ctx.inputs, { progress, log: (m) => ctx.log(INFO, `nsh: ${m}`) });
    record.phaseDone("upload");

    const result = await remote.buildDerivation(req.drvPath, basicDerivation(drv, ctx.inputs), { ...DEFAULT_BUILD_OPTIONS, maxSilentTime: limits.maxSilentTime, buildTimeout: limits.buildTimeout, maxLogSize: limits.maxLogSize });
    record.phaseDone("build");
    if (result.status > 2 && result.status !== 13) {
      ctx.log(ERROR, `nsh: job ${id} on ${node}: build of ${req.drvPath} failed: ${result.statusName}: ${result.errorMsg}`);
      await finish(log, remote, local, logDone);
      record.update({ state: "failed", message: result.errorMsg });
      reaper.done();
      return result.statusName === "TimedOut" ? TIMED_OUT : 1;
    }
    const outputs = ctx.wantedOutputs.map((o) => drv.outputs.get(o)?.path).filter((p): p is string => !!p);
    const method = importMethod(parseNixVersion(Bun.spawnSync(["nix-store", "--version"], { env: env as Record<string, string> }).stdout.toString()));
    await copyClosure(remote, { kind: "import", name: "local store", store: { store: "local", env }, method, heldLocks: outputs, client: local }, outputs, { progress });
    record.phaseDone("download");
    await finish(log, remote, local, logDone);
    record.update({ state: "succeeded" });
    reaper.done();
    return 0;
  } catch (e) {
    record.update({ state: ctx.signal.aborted ? "cancelled" : "failed", message: (e as Error).message });
    if (record.record.jobId) await scheduler.cancel(record.record.jobId).catch(() => {});
    reaper?.done();
    throw e;
  } finally {
    pool.close();
  }
}

/** Follows the job until it runs; says why it waits whenever the reason changes. */
async function waitUntilRunning(s: Scheduler, id: string, ctx: BuildContext): Promise<string> {
  let delay = 100;
  let said = "";
  for (;;) {
    if (ctx.signal.aborted) throw new Error(`job ${id} cancelled: the build was interrupted`);
    const st = await s.status(id);
    if (st.state === "running" || st.state === "completing") {
      const node = st.nodes ? firstHost(st.nodes) : undefined;
      if (node) return node;
    }
    if (isTerminal(st.state)) throw new Error(`job ${id} ended (${st.rawState.join(",")}${st.reason ? `: ${st.reason}` : ""}) before nsh could build in it`);
    const now = `${st.state}${st.reason && st.reason !== "None" ? ` (${st.reason})` : ""}`;
    if (now !== said) ctx.log(INFO, `nsh: job ${id} ${now}`);
    said = now;
    // Slurm cannot tell us when a job starts: ask, less often the longer it waits.
    await Bun.sleep(delay);
    delay = Math.min(delay * 2, 2000);
  }
}

function storeDirOf(drvPath: string): string {
  return drvPath.slice(0, drvPath.lastIndexOf("/"));
}

/** Hands lines of a stream to `each` as they arrive. */
async function pumpLines(src: unknown, each: (line: string) => void): Promise<void> {
  const reader = src as { read(): Promise<{ done: boolean; value?: Uint8Array }> };
  const dec = new TextDecoder();
  let partial = "";
  for (;;) {
    const r = await reader.read().catch(() => ({ done: true as const, value: undefined }));
    if (r.done || !r.value) break;
    const lines = (partial + dec.decode(r.value)).split("\n");
    partial = lines.pop() ?? "";
    for (const l of lines) each(l);
  }
  if (partial) each(partial);
}

/** The agent may go: the outputs are home. */
async function finish(log: { write(b: Uint8Array): Promise<void>; close(): void }, remote: ServeClient, local: ServeClient, logDone: Promise<void>): Promise<void> {
  await Promise.allSettled([remote.close(), local.close()]);
  await log.write(new TextEncoder().encode("done\n")).catch(() => {});
  await Promise.race([logDone, Bun.sleep(3000)]);
  log.close();
}

function startReaper(conf: NshConfig, env: Record<string, string | undefined>, jobId: string) {
  const proc = Bun.spawn([...selfCommand(), "__job-reaper"], { detached: true, stdin: "pipe", stdout: "ignore", stderr: "ignore" });
  const secrets: Record<string, string> = {};
  if (env.SLURM_JWT) secrets.SLURM_JWT = env.SLURM_JWT;
  proc.stdin.write(`${JSON.stringify({ conf, env: secrets, jobId })}\n`);
  void proc.stdin.flush();
  proc.unref();
  return {
    done() {
      try {
        proc.stdin.write("done\n");
        void proc.stdin.end();
      } catch {}
    },
  };
}
