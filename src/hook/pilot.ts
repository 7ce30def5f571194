// Pilot jobs (pilot-idle-time > 0): one allocation serves many builds. A build first looks in the
// state database for an idle pilot of its shape (pilot-key.ts) and connects to that job's agent
// instead of submitting; at pilot-max-jobs live pilots of its shape it waits for one to be idle.
// A pilot that is gone (its socket absent, its job ended, its node unreachable) is forgotten and the
// build looks again, or submits a job of its own: a vanished pilot never fails a build. After the
// build the job is offered as idle when its agent stayed (said goodbye without ending the job).
//
// Who ends a pilot job: while a hook holds it (its build runs there) that hook, as for its own
// job: a failure cancels it, its reaper cancels it if the hook dies. Once offered, nobody's reaper
// watches it: its agent ends it after pilot-idle-time without a build.
//
// With pilot-builds-per-job = K > 1 a job has K slots, one agent each (pilot-slots.ts), and ends
// when the last agent has left. Its submitting hook holds it alone, as above, until it runs; then
// the hook's reaper stands down and the other K-1 slots are offered as idle rows (shareSlots).
// From then on nobody cancels the job, because other builds may run in it:
//   - a build that fails (in the job, or in a copy or connection) ends only its own slot: after a
//     failed build the agent stays idle as after a good one; after any other failure the hook lets
//     go of the slot (forgets its row) and its agent leaves: 15 s after the hook's connections close
//     when a build had begun (the agent's orphan grace), else after pilot-idle-time;
//   - a hook killed mid-build likewise: its reaper does nothing (it stood down, or a taking hook
//     never told it the job); the slot's agent sees its hook gone and leaves (killing that build's
//     nix-store), its row is forgotten as its hook is dead; the sibling builds go on;
//   - a slot never taken leaves after pilot-idle-time; a job near its time limit is not offered
//     again, and its agents leave when idle (it is not cancelled: siblings may be building); a job
//     whose limit holds only about one build (Nix's timeout) is not shared at all: it stays the
//     submitting build's own job, ended as without slots.
//   - a hook killed while its K-slot job is still pending: its reaper cancels it (no sibling yet).
// While its own job is pending, a build takes a slot of its shape that is idle (jobs of K times one
// build's CPUs may not all fit at once) and cancels its own job, still unshared; only once it is
// connected there: a slot that vanished meanwhile leaves the build following its own job.
// A vanished slot (its agent left, the job ended) never fails a build that has not started in it:
// the build looks again or submits, as with one slot.
import { openStateDb, type StateDb } from "../state/db.ts";
import { waiterAlarm, type WaiterAlarm, waiterPace } from "../state/pilot-waiters.ts";
import {
  dropPilot, leavePilotQueue, offerPilot, type PilotJob, pilotFits, pilotQueuePlace, shareSlots, takePilot,
} from "../state/pilots.ts";
import { agentPathOnCluster } from "./agent-binary.ts";
import { type AgentSession, connectAgent } from "./build/connect.ts";
import { planJob } from "./build/plan.ts";
import { type BuildRun, INFO, Interrupted } from "./build/run.ts";
import { openLocalSession } from "./build/transfer.ts";
import { pilotEndsAt, pilotIdleUntil, pilotNeedMs, pilotResourceKey } from "./pilot-key.ts";
import { pilotSlots, slotDir } from "./pilot-slots.ts";

/** Time a pilot must have left beyond what the build may need (its copies, the hook's ssh). */
const TIME_LIMIT_MARGIN_MS = 60_000;
/** A pilot is taken only while it is sure to wait this much longer (the hook's ssh, clocks). */
const IDLE_MARGIN_MS = 5_000;
/** How often a build whose own pilot job is pending looks for an idle slot in another job. */
const WAIT_STEP_MS = 1000;

export interface TakenPilot {
  id: string;
  node: string;
  agentPath: string;
  session: AgentSession;
  job: PilotJob;
}

export interface PilotJobs {
  /** An idle pilot of this build's shape, connected; undefined: submit a job (its slot is reserved). */
  take(): Promise<TakenPilot | undefined>;
  /** After the build settled: offer the job as idle if its agent stayed, else forget it. Never throws. */
  offer(job: { id: string; node: string; agentPath: string; session: AgentSession }, taken?: TakenPilot): Promise<void>;
  /** The build failed outside its job's own build: the job is cancelled (a shared one: its slot left). Never throws. */
  drop(): Promise<void>;
  /**
   * Follows the build's own job until it runs; with pilot-builds-per-job > 1, an idle slot of its
   * shape that appears meanwhile takes the build instead, and the own job (still unshared) is cancelled.
   */
  followOrTake(id: string, follow: () => Promise<string>): Promise<{ node: string } | { taken: TakenPilot }>;
  /** The build's own job runs: with pilot-builds-per-job > 1, offer its other slots (the job is shared from now on). */
  share(job: { id: string; node: string; agentPath: string }): Promise<void>;
}

/** The build's pilot jobs; undefined when pilot-idle-time is off. */
export function pilotJobs(run: BuildRun): PilotJobs | undefined {
  const idleSec = run.ctx.conf["pilot-idle-time"];
  if (!(idleSec > 0)) return undefined;
  const { ctx, plan } = run;
  const endpoint = run.scheduler.describe();
  const ownDir = plan.dir;
  const slots = pilotSlots(ctx.conf["pilot-builds-per-job"], idleSec);
  let slot: number | undefined;
  /** The job's time limit as its status said when it was shared (spares offer() another status request). */
  let sharedLimits: Pick<PilotJob, "endsAt" | "limitMs"> | undefined;
  const withDb = async <T>(fn: (db: StateDb) => Promise<T>): Promise<T> => {
    const db = openStateDb(plan.localState);
    try {
      return await fn(db);
    } finally {
      db.close();
    }
  };
  const forget = async () => {
    if (slot === undefined) return;
    const s = slot;
    slot = undefined;
    await withDb((db) => dropPilot(db, s)).catch((e: Error) => ctx.log(1, `nsh: warning: ${e.message}`));
  };

  /** Connects to the pilot's agent; undefined (and the pilot forgotten) when it is gone. */
  async function connectPilot(job: PilotJob): Promise<TakenPilot | undefined> {
    ctx.log(INFO, `nsh: building in idle pilot job ${job.jobId} on ${job.node}`);
    run.record.mark("pilot-taken");
    plan.dir = job.dir;
    run.jobId = job.jobId;
    // A shared job's other builds must outlive this hook: its reaper is not told of the job.
    if (slots > 1) run.sharedJob = true;
    else run.reaper.job(job.jobId);
    try {
      run.localReady = openLocalSession(run);
      run.localReady.catch(() => {});
      // An ended agent removes its socket: the node does not wait for one (a gone pilot fails at once).
      const session = await connectAgent(run, job.jobId, job.node, job.agentPath, 0);
      run.record.update({ jobId: job.jobId, state: "running", node: job.node });
      return { id: job.jobId, node: job.node, agentPath: job.agentPath, session, job };
    } catch (e) {
      if (e instanceof Interrupted) throw e;
      ctx.log(INFO, `nsh: pilot job ${job.jobId} cannot take the build (${(e as Error).message}); looking again`);
      plan.dir = ownDir;
      run.jobId = undefined;
      run.sharedJob = undefined;
      void run.localReady?.then((c) => c.close(), () => {});
      run.localReady = undefined;
      void run.bulk?.close();
      run.bulk = undefined;
      await forget();
      return undefined;
    }
  }

  const shape = (async () => {
    const agent = await run.step(agentPathOnCluster(plan.clusterState, plan.localState));
    const spec = planJob(ctx, plan, agent.bin);
    return { resourceKey: pilotResourceKey(endpoint, spec, ownDir, slots), needMs: pilotNeedMs(spec) };
  })();
  shape.catch(() => {});

  const wanted = async () =>
    ({ endpoint, ...(await shape), marginMs: TIME_LIMIT_MARGIN_MS, maxJobs: ctx.conf["pilot-max-jobs"] });

  return {
    async take() {
      const want = await wanted();
      let said = false;
      const db = openStateDb(plan.localState);
      let waiter: number | undefined;
      let alarm: WaiterAlarm | undefined;
      try {
        for (;;) {
          const choice = await run.step(takePilot(db, want, Date.now(), undefined, false, waiter));
          if ("submit" in choice) {
            waiter = undefined;
            slot = choice.submit;
            return undefined;
          }
          if ("take" in choice) {
            waiter = undefined;
            slot = choice.take.slot;
            const taken = await connectPilot(choice.take.job!);
            if (taken) return taken;
            continue;
          }
          waiter = choice.waiter;
          if (!said) ctx.log(INFO, `nsh: waiting for one of ${choice.wait} pilot jobs to be idle (pilot-max-jobs)`);
          said = true;
          // Queued: a slot that becomes idle is handed over with a wake-up of this waiter alone; a full
          // look (a job may have ended, a holder died) only at waiterPace's pace. The first read after
          // the alarm is set catches a slot handed over before it was.
          const queued = waiter!;
          if (alarm?.id !== queued) {
            alarm?.close();
            alarm = waiterAlarm(plan.localState, queued);
          }
          // Moving up in line brings the next full look forward.
          const lookedAt = Date.now();
          for (;;) {
            const place = await pilotQueuePlace(db, queued);
            if (!place || place.granted) break;
            const pace = waiterPace(place.ahead);
            const left = lookedAt + pace.relookMs - Date.now();
            if (left <= 0) break;
            await run.step(alarm.next(Math.min(pace.readMs, left)));
          }
        }
      } finally {
        alarm?.close();
        const warn = (e: Error) => ctx.log(1, `nsh: warning: ${e.message}`);
        if (waiter !== undefined) await leavePilotQueue(db, waiter).catch(warn);
        db.close();
      }
    },

    async offer(job, taken) {
      try {
        if (slot === undefined) return;
        const stayed = await Promise.race([job.session.logDone, Promise.resolve(false)]);
        if (!stayed) return await forget();
        let endsAt = taken?.job.endsAt ?? sharedLimits?.endsAt ?? null;
        let limitMs = taken?.job.limitMs ?? sharedLimits?.limitMs ?? null;
        if (!taken && !sharedLimits) {
          const st = await run.scheduler.status(job.id).catch(() => undefined);
          endsAt = pilotEndsAt(st?.startTime ?? null, st?.timeLimitMinutes);
          limitMs = st?.timeLimitMinutes ? st.timeLimitMinutes * 60_000 : null;
        }
        // Too near its time limit for another build like this one: it would only idle. End it.
        if (!pilotFits({ endsAt, limitMs }, (await shape).needMs, Date.now(), TIME_LIMIT_MARGIN_MS)) {
          await forget();
          // A shared job's other slots may be building: this slot's agent leaves when idle.
          if (!run.sharedJob) await run.scheduler.cancel(job.id);
          return;
        }
        const idleUntil = pilotIdleUntil(Date.now(), idleSec, IDLE_MARGIN_MS);
        const builds = (taken?.job.builds ?? 0) + 1;
        const s = slot;
        const idle = { jobId: job.id, node: job.node, dir: plan.dir, agentPath: job.agentPath, endsAt, limitMs, idleUntil, builds };
        const to = await withDb((db) => offerPilot(db, s, idle));
        const next = to === undefined ? `up to ${idleSec} s idle` : `handed to the waiting hook ${to}`;
        ctx.log(INFO, `nsh: job ${job.id} stays for another build (pilot, ${next})`);
      } catch (e) {
        ctx.log(1, `nsh: warning: cannot offer job ${job.id} as a pilot: ${(e as Error).message}`);
      }
    },

    drop: forget,

    async followOrTake(id, follow) {
      const following = follow();
      if (slots <= 1 || slot === undefined) return { node: await following };
      following.catch(() => {}); // once the build took a slot, its own job is cancelled under this
      const want = await wanted();
      for (;;) {
        const node = await run.step(Promise.race([following, Bun.sleep(WAIT_STEP_MS).then(() => undefined)]));
        if (node !== undefined) return { node };
        const choice = await run.step(withDb((db) => takePilot(db, want, Date.now(), undefined, true)));
        if (!("take" in choice)) continue;
        // The own job is not shared yet: it ends only once the build runs in the slot.
        const mine: number | undefined = slot;
        const ownLocal = run.localReady;
        slot = choice.take.slot;
        const taken = await connectPilot(choice.take.job!);
        if (!taken) {
          slot = mine;
          run.jobId = id;
          run.localReady = ownLocal;
          continue;
        }
        void ownLocal?.then((c) => c.close(), () => {});
        ctx.log(INFO, `nsh: a slot of job ${taken.id} took the build; cancelling its own pending job ${id}`);
        const warn = (e: Error) => ctx.log(1, `nsh: warning: ${e.message}`);
        // Its row stays (busy, held by this hook, forgotten once the hook has exited): still counted against
        // pilot-max-jobs, so another build does not submit a job that would only pend in its place.
        await run.scheduler.cancel(id).catch(warn);
        return { taken };
      }
    },

    async share(job) {
      if (slots <= 1 || slot === undefined) return;
      try {
        const st = await run.scheduler.status(job.id).catch(() => undefined);
        const endsAt = pilotEndsAt(st?.startTime ?? null, st?.timeLimitMinutes);
        const limitMs = st?.timeLimitMinutes ? st.timeLimitMinutes * 60_000 : null;
        sharedLimits = { endsAt, limitMs };
        // A job whose limit holds only about one build (Nix's timeout) offers no other slot (they leave when
        // idle): it stays this build's own job.
        if (!pilotFits(sharedLimits, (await shape).needMs, Date.now(), TIME_LIMIT_MARGIN_MS)) return;
        // From here on other builds may run in the job: the reaper must not cancel it with this hook.
        await run.reaper.done();
        run.sharedJob = true;
        // The other slots' agents have waited since the job started: their idle time counts from then.
        const started = st?.startTime ? Math.min(st.startTime * 1000, Date.now()) : Date.now();
        const idleUntil = pilotIdleUntil(started, idleSec, IDLE_MARGIN_MS);
        const base = { jobId: job.id, node: job.node, agentPath: job.agentPath, endsAt, limitMs, builds: 0 };
        const own = { ...base, dir: plan.dir, idleUntil };
        const others = [...Array(slots - 1).keys()].map((i) => ({ ...base, dir: slotDir(plan.dir, i + 1), idleUntil }));
        const s = slot;
        await withDb((db) => shareSlots(db, s, own, others));
        ctx.log(INFO, `nsh: job ${job.id} has ${slots - 1} more slots for builds (pilot-builds-per-job)`);
      } catch (e) {
        ctx.log(1, `nsh: warning: cannot offer the other slots of job ${job.id}: ${(e as Error).message}`);
      }
    },
  };
}
