// The machine-wide job-state broker: every nsh process registers the jobs it follows in the state
// database (state/job-watch.ts); whichever process holds the endpoint's lease asks the scheduler
// about ALL of them with one statusMany per tick and writes the answers there; the others only read
// the table. Cancels are queued the same way and sent by the leader in one cancelMany. A leader that
// dies (even by SIGKILL) is replaced by the next process that looks: its pid is gone.
//
// The tick adapts as build-job's waitUntilRunning does: 100 ms while a job was just submitted or just
// changed state (a start or an end is likely soon), then 0.5 s, then 2 s for jobs that queue or run long;
// and it stretches while the query budget runs low (pollFloorMs), so ticks stay even instead of stalling.
import {
  jobPollDelay, nextPollAt, pollFloorMs, pollMaySpend, type JobWatchTable, type StateUpdate, type WatchRow,
} from "../state/job-watch.ts";
import type { RateLimiter } from "../state/rate-limit.ts";
import { isTerminal, type JobStatus, type Scheduler, SchedulerError, type SchedulerErrorKind } from "./scheduler.ts";

export interface BrokerOptions {
  /** taken before every scheduler call the broker makes (its queries and cancels; submits have their own) */
  limiter?: RateLimiter;
  /** a leader silent this long is replaced even if its process lives (stopped, swapped out) */
  staleMs?: number;
  /** how often a process that does not lead checks whether the lease is free */
  candidateEveryMs?: number;
  /** how often the leader renews its lease */
  renewEveryMs?: number;
  /** a status() with no answer from any leader for this long asks the scheduler itself */
  directAfterMs?: number;
  /** how long a cancel waits for the leader before sending it itself */
  cancelDirectAfterMs?: number;
  /** a failed poll is passed on to readers once the last state is this old (a blip is not) */
  errorAfterMs?: number;
  log?: (line: string) => void;
}

const errorJson = (e: unknown): string =>
  JSON.stringify(
    e instanceof SchedulerError
      ? { kind: e.kind, message: e.message, details: e.details }
      : { kind: "protocol", message: String((e as Error)?.message ?? e), details: [] },
  );

function errorFrom(json: string): SchedulerError {
  try {
    const o = JSON.parse(json) as { kind: SchedulerErrorKind; message: string; details?: string[] };
    return new SchedulerError(o.kind, o.message, o.details ?? []);
  } catch {
    return new SchedulerError("protocol", json);
  }
}

export class JobBroker {
  private readonly followed = new Set<string>();
  private loopRunning: Promise<void> | null = null;
  private localWaiters = 0;
  private closed = false;
  /** status() calls of this process waiting for the next states this process records as leader */
  private waking: (() => void)[] = [];
  /** ends the leader loop's pause early: this process followed a job or queued a cancel */
  private kick: (() => void) | null = null;
  /** poked while the loop was busy: its next pause is skipped, so the poke is not lost */
  private poked = false;
  private readonly o: Required<Omit<BrokerOptions, "limiter">> & { limiter?: RateLimiter };
  /** scheduler calls this process made as leader (diagnostics, tests) */
  readonly stats = { polls: 0, cancelCalls: 0, ticksLed: 0 };

  constructor(
    private readonly inner: Scheduler,
    readonly table: JobWatchTable,
    o: BrokerOptions = {},
  ) {
    this.o = {
      staleMs: o.staleMs ?? 10_000,
      candidateEveryMs: o.candidateEveryMs ?? 250,
      renewEveryMs: o.renewEveryMs ?? 1000,
      directAfterMs: o.directAfterMs ?? 30_000,
      cancelDirectAfterMs: o.cancelDirectAfterMs ?? 60_000,
      errorAfterMs: o.errorAfterMs ?? 10_000,
      log: o.log ?? (() => {}),
      ...(o.limiter ? { limiter: o.limiter } : {}),
    };
    process.once("exit", () => this.table.resign());
  }

  /** Registers jobs to follow (a submit does this at once, so the leader polls the job right away). */
  async follow(ids: readonly string[]): Promise<void> {
    const fresh = ids.filter((id) => !this.followed.has(id));
    if (fresh.length > 0) await this.table.follow(fresh);
    for (const id of fresh) this.followed.add(id);
    this.ensureLoop();
    if (fresh.length > 0) this.poke();
  }

  /** No longer interested: the leader stops asking about them. */
  async unfollow(ids: readonly string[]): Promise<void> {
    await this.table.unfollow(ids);
    for (const id of ids) this.followed.delete(id);
  }

  /**
   * The job's state as the leader saw it; waits for the first one after following. `fresh`: one
   * seen at or after this call (the next tick), unless the job has ended (it changes no more);
   * `now`: that tick comes at once, whatever the pacing (a sign says the state just changed).
   */
  async status(id: string, o: { fresh?: boolean; now?: boolean } = {}): Promise<JobStatus> {
    await this.follow([id]);
    const asked = Date.now();
    const deadline = asked + this.o.directAfterMs;
    // Set once the row is touched: only a poll that saw the touch (asked after it) answers.
    let mark: number | undefined;
    this.localWaiters++;
    try {
      for (let n = 0; ; n++) {
        const row = (await this.table.rows([id]))[0];
        if (!row) {
          // Reaped as a dead process's row (pid reuse confusion) or pruned: follow again.
          this.followed.delete(id);
          await this.follow([id]);
        } else {
          // One failed poll fails nobody's build while the last state is recent: the next tick retries.
          const lastAnswer = row.status !== null && row.checked_at !== null ? row.checked_at : -Infinity;
          if (row.error !== null && Date.now() - lastAnswer > this.o.errorAfterMs) throw errorFrom(row.error);
          const since = (at: number) => row.done === 1 || (row.checked_at !== null && row.checked_at >= at);
          // A started job is polled seldom, and `now` says a change is likely (one a poll in this
          // very millisecond may have missed): ask the leader for a state from after this question.
          const seldom = row.state !== null && row.state !== "pending";
          if (o.fresh && mark === undefined && row.done !== 1 && (o.now || (seldom && !since(asked)))) {
            mark = (await this.table.touch([id])).get(id);
            this.poke();
          }
          const seenSince = since(mark ?? asked);
          if (row.status !== null && (!o.fresh || seenSince)) return JSON.parse(row.status) as JobStatus;
        }
        if (Date.now() > deadline) {
          this.o.log(`nsh: no state for job ${id} from the job broker within ${this.o.directAfterMs} ms; asking the scheduler directly`);
          await this.o.limiter?.take("query");
          return await this.inner.status(id);
        }
        this.ensureLoop();
        // Woken at once when this process is the leader and records states; else the next look.
        await Promise.race([Bun.sleep(n < 20 ? 10 : 50), new Promise<void>((r) => this.waking.push(r))]);
      }
    } finally {
      this.localWaiters--;
    }
  }

  /** Cancels through the leader's next cancelMany; resolves once it was sent (a finished job is no error). */
  async cancel(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.table.requestCancel(ids);
    this.poke();
    this.localWaiters++;
    const deadline = Date.now() + this.o.cancelDirectAfterMs;
    try {
      for (;;) {
        this.ensureLoop();
        const res = await this.table.cancelResults(ids);
        if ([...res.values()].every((r) => r.done)) {
          const failed = [...res.entries()].find(([, r]) => r.error !== null);
          if (failed) throw errorFrom(failed[1].error!);
          return;
        }
        if (Date.now() > deadline) {
          this.o.log(`nsh: the job broker did not send the cancel of ${ids.join(", ")} within ${this.o.cancelDirectAfterMs} ms; sending it directly`);
          await this.sendCancels(ids.filter((id) => !res.get(id)?.done));
          continue;
        }
        await Promise.race([Bun.sleep(20), new Promise<void>((r) => this.waking.push(r))]);
      }
    } finally {
      this.localWaiters--;
    }
  }

  /** Stops this process's part (gives the lease up); rows stay for their readers. */
  close(): void {
    this.closed = true;
    this.table.resign();
  }

  /** Something for the leader to see now (a followed job, a touched row, a queued cancel). */
  private poke(): void {
    this.poked = true;
    this.kick?.();
  }

  private ensureLoop(): void {
    if (this.closed || this.loopRunning) return;
    this.loopRunning = this.loop()
      .catch((e: unknown) => this.o.log(`nsh: job broker stopped: ${(e as Error)?.message ?? e}`))
      .finally(() => {
        this.loopRunning = null;
      });
  }

  /** Runs while this process follows unfinished jobs or waits for an answer; leads when it can. */
  private async loop(): Promise<void> {
    let leading = false;
    let renewedAt = 0;
    let lastPoll = 0;
    let sweptAt = 0;
    let rows: WatchRow[] = [];
    let floorMs = 0;
    try {
      while (!this.closed) {
        if (this.localWaiters === 0 && !(await this.table.interest())) return;
        const now = Date.now();
        if (!leading || now - renewedAt >= this.o.renewEveryMs) {
          const was = leading;
          leading = await this.table.lead(this.o.staleMs, now);
          renewedAt = now;
          if (leading && !was) this.o.log(`nsh: this process (${process.pid}) now asks the scheduler for all of this machine's jobs`);
        }
        if (!leading) {
          await Bun.sleep(this.o.candidateEveryMs);
          continue;
        }
        this.stats.ticksLed++;
        // A scheduler call may wait long (the rate limit, a slow slurmctld): keep the lease meanwhile.
        const renewer = setInterval(() => void this.table.lead(this.o.staleMs).catch(() => {}), this.o.renewEveryMs);
        try {
          const cancels = await this.table.pendingCancels();
          if (cancels.length > 0) {
            await this.sendCancels(cancels);
            for (const wake of this.waking.splice(0)) wake();
          }
          if (now - sweptAt >= 1000) {
            rows = await this.table.sweep(now);
            sweptAt = now;
          } else rows = await this.table.rows();
          const tokens = await this.spendableTokens();
          floorMs = this.o.limiter ? pollFloorMs(tokens, this.o.limiter.policy) : 0;
          const due = nextPollAt(rows, lastPoll, Date.now(), floorMs);
          if (due !== undefined && due <= Date.now() && pollMaySpend(rows, tokens, this.o.limiter?.policy.burst)) {
            lastPoll = Date.now();
            await this.poll(rows.filter((r) => !r.done), floorMs);
            for (const wake of this.waking.splice(0)) wake();
          }
        } finally {
          clearInterval(renewer);
        }
        const next = nextPollAt(await this.table.rows(), lastPoll, Date.now(), floorMs);
        // Wake at least every 100 ms to see newly followed jobs and queued cancels (a cheap read).
        const pause = Math.max(5, Math.min(100, (next ?? Infinity) - Date.now()));
        if (!this.poked) await Promise.race([Bun.sleep(pause), new Promise<void>((r) => (this.kick = r))]);
        this.kick = null;
        this.poked = false;
      }
    } finally {
      if (leading) this.table.resign();
    }
  }

  /** The query tokens spendable now (Infinity without a rate limit, or when the budget cannot be read: take() says why). */
  private async spendableTokens(): Promise<number> {
    try {
      return this.o.limiter ? await this.o.limiter.available() : Infinity;
    } catch {
      return Infinity;
    }
  }

  /** One statusMany for all, else one status per job that is due. */
  private async poll(rows: WatchRow[], floorMs: number): Promise<void> {
    if (rows.length === 0) return;
    const ids = rows.map((r) => r.job_id);
    const seen = new Map(rows.map((r) => [r.job_id, r.changed_at]));
    const toUpdate = (id: string, st: JobStatus): StateUpdate => ({
      id, state: st.state, done: isTerminal(st.state), status: JSON.stringify(st), seenChangedAt: seen.get(id) ?? null,
    });
    if (this.inner.statusMany) {
      try {
        await this.o.limiter?.take("query");
        this.stats.polls++;
        // Stamped with when it was asked: a reader wanting a state from after its question (a
        // start notice's) must not get one a query already under way found before.
        const askedAt = Date.now();
        const got = await this.inner.statusMany(ids);
        await this.table.record([...got].filter(([id]) => ids.includes(id)).map(([id, st]) => toUpdate(id, st)), askedAt);
      } catch (e) {
        await this.table.recordError(ids, errorJson(e));
      }
      return;
    }
    const now = Date.now();
    for (const r of rows) {
      if (r.checked_at !== null && now - r.checked_at < jobPollDelay(r, now, floorMs)) continue;
      try {
        await this.o.limiter?.take("query");
        this.stats.polls++;
        const askedAt = Date.now();
        await this.table.record([toUpdate(r.job_id, await this.inner.status(r.job_id))], askedAt);
      } catch (e) {
        await this.table.recordError([r.job_id], errorJson(e));
      }
    }
  }

  /** One cancelMany (else one cancel each); a failed batch is retried job by job to tell who failed. */
  private async sendCancels(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    if (this.inner.cancelMany && ids.length > 1) {
      try {
        await this.o.limiter?.take("cancel");
        this.stats.cancelCalls++;
        await this.inner.cancelMany(ids);
        await this.table.recordCancels(ids, null);
        await this.table.touch(ids);
        return;
      } catch {
        // fall through: one by one
      }
    }
    for (const id of ids) {
      try {
        await this.o.limiter?.take("cancel");
        this.stats.cancelCalls++;
        await this.inner.cancel(id);
        await this.table.recordCancels([id], null);
        await this.table.touch([id]);
      } catch (e) {
        await this.table.recordCancels([id], errorJson(e));
      }
    }
  }
}
