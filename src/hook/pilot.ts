// Pilot jobs (pilot-idle-time > 0): one allocation serves many builds. A build first tries to take
// an idle pilot of its shape from the state database (pilot-key.ts); it connects to that job's
// agent instead of submitting. A pilot that is gone (its socket absent, its job ended, its node
// unreachable) is forgotten and the build submits a job of its own: a vanished pilot never fails a
// build. After the build the job is offered as an idle pilot when its agent stayed (said goodbye).
//
// Who ends a pilot job: while a hook holds it (taken, not yet offered again) that hook, as for its
// own job: a failure cancels it, its reaper cancels it if the hook dies. Once offered, nobody's
// reaper watches it: its agent ends it after pilot-idle-time without a build.
import { AGENT_SOCKET } from "../agent/protocol.ts";
import type { ImportMethod } from "../nix/version.ts";
import { importMethod } from "../nix/version.ts";
import { parseDestination } from "../remote/destination.ts";
import { openLocalServe } from "../remote/open-store.ts";
import { shellQuote } from "../remote/ssh.ts";
import { openStateDb } from "../state/db.ts";
import { claimPilot, offerPilot, type PilotRow } from "../state/pilots.ts";
import { agentPathOnCluster } from "./agent-binary.ts";
import { type AgentSession, connectAgent } from "./build/connect.ts";
import { planJob } from "./build/plan.ts";
import { type BuildRun, INFO, Interrupted } from "./build/run.ts";
import { pilotEndsAt, pilotIdleUntil, pilotNeedMs, pilotResourceKey } from "./pilot-key.ts";

/** Time a pilot must have left beyond what the build may need (its copies, the hook's ssh). */
const TIME_LIMIT_MARGIN_MS = 60_000;
/** A pilot is taken only while it is sure to wait this much longer (the hook's ssh, clocks). */
const IDLE_MARGIN_MS = 5_000;

export interface TakenPilot {
  id: string;
  node: string;
  agentPath: string;
  methodReady: Promise<ImportMethod>;
  session: AgentSession;
  row: PilotRow;
}

export interface PilotJobs {
  /** An idle pilot of this build's shape, connected; undefined: submit a job. */
  take(): Promise<TakenPilot | undefined>;
  /** After the build settled: offer the job as an idle pilot if its agent stayed. Never throws. */
  offer(job: { id: string; node: string; agentPath: string; session: AgentSession }, taken?: TakenPilot): Promise<void>;
}

/** The build's pilot jobs; undefined when pilot-idle-time is off. */
export function pilotJobs(run: BuildRun): PilotJobs | undefined {
  const idleSec = run.ctx.conf["pilot-idle-time"];
  if (!(idleSec > 0)) return undefined;
  const { ctx, plan } = run;
  const endpoint = run.scheduler.describe();
  const ownDir = plan.dir;
  const shape = (async () => {
    const agent = await run.step(agentPathOnCluster(plan.clusterState, plan.localState));
    const spec = planJob(ctx, plan, agent.bin);
    return { key: pilotResourceKey(endpoint, spec, ownDir), needMs: pilotNeedMs(spec) };
  })();
  shape.catch(() => {});
  const withDb = async <T>(fn: (db: ReturnType<typeof openStateDb>) => Promise<T>): Promise<T> => {
    const db = openStateDb(plan.localState);
    try {
      return await fn(db);
    } finally {
      db.close();
    }
  };

  return {
    async take() {
      const { key, needMs } = await shape;
      const row = await withDb((db) => claimPilot(db, endpoint, key, needMs, TIME_LIMIT_MARGIN_MS));
      if (!row) return undefined;
      ctx.log(INFO, `nsh: building in idle pilot job ${row.jobId} on ${row.node}`);
      plan.dir = row.dir;
      run.jobId = row.jobId;
      run.reaper.job(row.jobId);
      try {
        // An ended agent removes its socket: a quick look spares the bridge's wait for one.
        const node = parseDestination(row.node);
        const look = await run.step(run.pool.runCommand(node, `test -S ${shellQuote(`${row.dir}/${AGENT_SOCKET}`)}`));
        if (look.code !== 0) throw new Error("its agent has left");
        run.localReady = openLocalServe({ env: run.env });
        run.localReady.catch(() => {});
        const session = await connectAgent(run, row.jobId, row.node, row.agentPath);
        run.record.update({ jobId: row.jobId, state: "running", node: row.node });
        const methodReady = ctx.importMethod ? Promise.resolve(ctx.importMethod) : run.nixVersion.then(importMethod);
        methodReady.catch(() => {});
        return { id: row.jobId, node: row.node, agentPath: row.agentPath, methodReady, session, row };
      } catch (e) {
        if (e instanceof Interrupted) throw e;
        ctx.log(INFO, `nsh: pilot job ${row.jobId} cannot take the build (${(e as Error).message}); submitting a job`);
        plan.dir = ownDir;
        run.jobId = undefined;
        void run.localReady?.then((c) => c.close(), () => {});
        run.localReady = undefined;
        void run.bulk?.close();
        run.bulk = undefined;
        return undefined;
      }
    },

    async offer(job, taken) {
      try {
        const stayed = await Promise.race([job.session.logDone, Promise.resolve(false)]);
        if (!stayed) return;
        const { key } = await shape;
        let endsAt = taken?.row.endsAt ?? null;
        let limitMs = taken?.row.limitMs ?? null;
        if (!taken) {
          const st = await run.scheduler.status(job.id).catch(() => undefined);
          endsAt = pilotEndsAt(st?.startTime ?? null, st?.timeLimitMinutes);
          limitMs = st?.timeLimitMinutes ? st.timeLimitMinutes * 60_000 : null;
        }
        const idleUntil = pilotIdleUntil(Date.now(), idleSec, IDLE_MARGIN_MS);
        const builds = (taken?.row.builds ?? 0) + 1;
        await withDb((db) =>
          offerPilot(db, { endpoint, jobId: job.id, resourceKey: key, node: job.node, dir: plan.dir, agentPath: job.agentPath, endsAt, limitMs, idleUntil, builds }),
        );
        ctx.log(INFO, `nsh: job ${job.id} stays for another build (pilot, up to ${idleSec} s idle)`);
      } catch (e) {
        ctx.log(1, `nsh: warning: cannot offer job ${job.id} as a pilot: ${(e as Error).message}`);
      }
    },
  };
}
