// What the steps of one accepted build share: its plan, the scheduler, the ssh pool, the job's
// record and reaper, what is known of the job so far, and `step`, which races every wait against
// SIGTERM (Nix ≥ 2.35, 500 ms before its SIGKILL) so the build is abandoned at once.
import fs from "node:fs";
import type { ServeClient } from "../../nix/serve-client.ts";
import { type ImportMethod, importMethod, type NixVersion, parseNixVersion } from "../../nix/version.ts";
import { SshPool } from "../../remote/ssh.ts";
import { sshPoolOptions } from "../../remote/ssh-options.ts";
import { sshRelay } from "../../remote/ssh-relay.ts";
import { fileIdentity, fileMemo } from "../../state/memo.ts";
import { openPoliteScheduler } from "../../schedulers/polite-open.ts";
import type { JobHandle, Scheduler } from "../../schedulers/scheduler.ts";
import type { BuildContext } from "../executor.ts";
import { JobLog } from "../job-record.ts";
import type { NodeBulk } from "../node-bulk.ts";
import { type Reaper, startReaper } from "../reaper.ts";
import type { BuildPlan } from "./plan.ts";
import type { StartListener } from "./start-listener.ts";

export const INFO = 3;
export const ERROR = 0;

/** The build was interrupted (SIGTERM): the job is being cancelled, nothing else to report. */
export class Interrupted extends Error {}

/** A failure whose message already says all (no "job N:" prefix needed); `status` is the hook's exit status. */
export class JobFailure extends Error {
  constructor(
    message: string,
    readonly status = 1,
  ) {
    super(message);
  }
}

export interface BuildRun {
  readonly ctx: BuildContext;
  readonly env: Record<string, string | undefined>;
  readonly plan: BuildPlan;
  readonly scheduler: Scheduler;
  readonly pool: SshPool;
  readonly record: JobLog;
  readonly reaper: Reaper;
  /** Nix's version (how outputs are imported, which exit status says what), asked while the job starts. */
  readonly nixVersion: Promise<NixVersion>;
  /** How the outputs come home: the context's, else from Nix's version. */
  readonly importMethod: Promise<ImportMethod>;
  /** Resolves once the agent said hello: a serve channel that came too early tries again directly. */
  readonly heard: PromiseWithResolvers<void>;
  /** `p`, or Interrupted as soon as SIGTERM comes. */
  step<T>(p: Promise<T>): Promise<T>;
  /** What is known of the job so far; the last steps (and the failure path) act on it. */
  jobId?: string;
  submitting?: Promise<JobHandle>;
  localReady?: Promise<ServeClient>;
  bulk?: NodeBulk;
  /** Where the job's agent says it started, while the hook waits for that (start-notice-host). */
  startNotice?: StartListener;
  /** The job serves other builds too (pilot-builds-per-job > 1): never cancel it, only this build's slot ends. */
  sharedJob?: boolean;
  /** Ends what the run holds (the interrupt listener, the local serve session, the pool). */
  close(): void;
}

export async function openRun(ctx: BuildContext, plan: BuildPlan): Promise<BuildRun> {
  const { conf, req } = ctx;
  const env = ctx.env ?? process.env;
  // The scheduler's request lines (`slurm: GET /… -> 200 in 3.1 ms`, `pbs-cli: qstat … -> 0 in …`) are for debugging; its other lines (token file readable by
  // others, Slurm's submit warnings) are warnings.
  const log = (line: string) => (/ -> .* in [\d.]+ ms$/.test(line) ? ctx.log(6, `nsh: ${line}`) : ctx.log(1, `nsh: warning: ${line}`));
  const debug = (line: string) => ctx.log(6, `nsh: ${line}`);
  // Behind the machine-wide politeness (rate budgets, job broker, queue cap): schedulers/polite.ts.
  const notice = (line: string) => ctx.log(INFO, `nsh: ${line}`);
  const politeOpts = { log, debug, notice, memoDir: plan.localState, stateDir: plan.localState, signal: ctx.signal };
  const scheduler = await openPoliteScheduler(conf, env, politeOpts);
  const warn = (m: string) => ctx.log(1, `nsh: ${m}`);
  const idle = conf["ssh-relay-idle-time"];
  const relay = idle > 0 ? sshRelay(plan.localState, conf, env, idle, { warn, debug }) : undefined;
  const pool = new SshPool(sshPoolOptions(conf, { warn, relay }));
  const record = new JobLog(plan.localState, {
    key: plan.key,
    drv: req.drvPath,
    scheduler: scheduler.describe(),
    state: "submitting",
    submittedAt: Date.now(),
    phases: {},
    marks: { hook: Math.round(performance.timeOrigin), ...(ctx.acceptedAt ? { accepted: ctx.acceptedAt } : {}) },
    hookPid: process.pid,
  });
  const reaper = startReaper(conf, env, { stateDir: plan.localState, key: plan.key }, (m) => ctx.log(1, `nsh: warning: ${m}`));

  const interrupted = Promise.withResolvers<never>();
  interrupted.promise.catch(() => {});
  const onAbort = () => interrupted.reject(new Interrupted("the build was interrupted"));
  if (ctx.signal.aborted) onAbort();
  else ctx.signal.addEventListener("abort", onAbort, { once: true });
  const heard = Promise.withResolvers<void>();
  heard.promise.catch(() => {});
  const nixVersion = localNixVersion(env, plan.localState);
  nixVersion.catch(() => {});
  const method = ctx.importMethod ? Promise.resolve(ctx.importMethod) : nixVersion.then(importMethod);
  method.catch(() => {});
  const run: BuildRun = {
    ctx,
    env,
    plan,
    scheduler,
    pool,
    record,
    reaper,
    nixVersion,
    importMethod: method,
    heard,
    step: <T>(p: Promise<T>): Promise<T> => Promise.race([p, interrupted.promise]),
    close() {
      heard.reject(new Error("the agent never said hello"));
      run.startNotice?.close();
      ctx.signal.removeEventListener("abort", onAbort);
      void run.localReady?.then((c) => c.close(), () => {});
      void run.bulk?.close();
      pool.close();
      scheduler.close();
    },
  };
  return run;
}

/** How long a hook trusts the version line a nix-store binary (by path, inode, size and mtime) gave. */
const VERSION_MEMO_MS = 24 * 3600_000;

/**
 * The local Nix's version: how outputs are imported, and the exit status of a failed build. Each
 * hook needs it, and `nix-store --version` costs a process (~20 ms CPU): the answer is kept per binary.
 */
export async function localNixVersion(env: Record<string, string | undefined>, stateDir: string): Promise<NixVersion> {
  const exe = Bun.which("nix-store", { PATH: env.PATH ?? "" });
  const key = exe ? fileIdentity(exe) : undefined;
  const memo = key ? fileMemo<string>(stateDir, "nix-version", VERSION_MEMO_MS) : undefined;
  const known = key ? memo?.get(key) : undefined;
  if (known) {
    try {
      return parseNixVersion(known);
    } catch {} // asked again below
  }
  const argv = [exe ?? "nix-store", "--version"];
  const p = Bun.spawn(argv, { env: env as Record<string, string>, stdout: "pipe", stderr: "ignore" });
  const line = await new Response(p.stdout).text();
  const version = parseNixVersion(line);
  if (key) memo?.set(key, line);
  return version;
}
