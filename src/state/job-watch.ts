// The jobs every nsh process on the machine follows, in the shared state database, so that ONE
// process (the leader of a scheduler endpoint, holding a lease) asks the scheduler about all of
// them per tick and the others read the answers here. Also the queue of cancels the leader sends
// in one call, and the submits in flight that the queue cap counts. The scheduler-facing half is
// src/schedulers/job-broker.ts; job states here are opaque words and JSON (no scheduler types).
//
// Rows name their process (pid + start time), as the transfer budget's leases do: rows of a process
// that died are reclaimed by whoever looks next, and a dead leader's lease is taken over.
import type { Database } from "bun:sqlite";
import type { StateDb } from "./db.ts";
import { probeHolder, selfStart } from "./budget.ts";

export interface WatchRow {
  job_id: string;
  pid: number;
  start_time: number;
  followed_at: number;
  state: string | null;
  done: number;
  status: string | null;
  error: string | null;
  checked_at: number | null;
  changed_at: number | null;
}

export interface LeaderRow {
  pid: number;
  start_time: number;
  renewed_at: number;
}

export type LeaseVerdict = "mine" | "held" | "free";

/**
 * Pure: who leads. Ours stays ours while we renew; another's is free once its holder is gone or
 * has not renewed for `staleMs` (alive but wedged: a stopped or swapped-out process).
 */
export function leaseVerdict(
  row: LeaderRow | null,
  me: { pid: number; start_time: number },
  now: number,
  staleMs: number,
  alive: (r: LeaderRow) => boolean,
): LeaseVerdict {
  if (!row) return "free";
  if (row.pid === me.pid && row.start_time === me.start_time) return "mine";
  if (!alive(row) || now - row.renewed_at > staleMs) return "free";
  return "held";
}

/**
 * Pure: the poll interval for one followed job. Waiting to start: 100 ms for 2 s (most jobs that
 * start at once do so within a second), 250 ms until 5 s, 0.5 s until 30 s, then 2 s: a build waits
 * on that start. Running: 5 s, since a build learns its job's end from its agent; a reader that
 * needs a running job's state now touches its row (changed after the last poll), which is polled
 * at once. `floorMs` (pollFloorMs) stretches the intervals while the query budget runs low; a new
 * or touched job is still polled at once.
 */
export function jobPollDelay(
  row: Pick<WatchRow, "followed_at" | "changed_at" | "checked_at" | "state">,
  now: number,
  floorMs = 0,
): number {
  // Never polled, or touched since the last poll (a cancel was sent, a reader wants the state now).
  if (row.checked_at === null || (row.changed_at !== null && row.changed_at > row.checked_at)) return 0;
  const started = row.state !== null && row.state !== "pending";
  if (started) return Math.max(5000, floorMs);
  const age = now - Math.max(row.followed_at, row.changed_at ?? 0);
  return Math.max(floorMs, age < 2000 ? 100 : age < 5000 ? 250 : age < 30_000 ? 500 : 2000);
}

/**
 * Pure: the shortest pause between two polls, given the query tokens spendable now. With half the
 * burst or more left, none. Below that the pause grows to one token's refill time at KEEP_TOKENS,
 * so a chain of builds polls as often as the budget refills, evenly, instead of spending it at
 * 100 ms ticks and then waiting a whole refill (1.2 s at the default rate) while a job may already
 * run; with pollMaySpend a token stays for the poll a job's start notice asks for (statusNow).
 */
export function pollFloorMs(tokens: number, policy: { burst: number; perSecond: number }): number {
  const half = policy.burst / 2;
  if (tokens >= half) return 0;
  const refillMs = 1000 / policy.perSecond;
  if (half <= KEEP_TOKENS) return Math.round(refillMs);
  return Math.round(refillMs * (1 - Math.max(0, tokens - KEEP_TOKENS) / (half - KEEP_TOKENS)));
}

/** Paced polls go only with this many tokens spendable, so one is left for a start notice's poll. */
export const KEEP_TOKENS = 2;

/**
 * Pure: may the leader's poll that is due spend a token now? Always for a job never polled or
 * touched since (a reader waits on it now); a paced poll only while KEEP_TOKENS are spendable (a
 * bucket smaller than that: while it is full).
 */
export function pollMaySpend(
  rows: readonly Pick<WatchRow, "changed_at" | "checked_at" | "done">[],
  tokens: number,
  burst = Infinity,
): boolean {
  const touched = (r: Pick<WatchRow, "changed_at" | "checked_at">) => r.changed_at !== null && r.checked_at !== null && r.changed_at > r.checked_at;
  const urgent = rows.some((r) => !r.done && (r.checked_at === null || touched(r)));
  return urgent || tokens >= Math.min(KEEP_TOKENS, burst);
}

/** Pure: when the next poll of all `rows` is due (ms since the epoch), undefined when none needs one. */
export function nextPollAt(
  rows: readonly Pick<WatchRow, "followed_at" | "changed_at" | "checked_at" | "done" | "state">[],
  lastPollAt: number,
  now: number,
  floorMs = 0,
): number | undefined {
  let due: number | undefined;
  for (const r of rows) {
    if (r.done) continue;
    const at = r.checked_at === null ? now : lastPollAt + jobPollDelay(r, now, floorMs);
    due = due === undefined ? at : Math.min(due, at);
  }
  return due;
}

/** Pure: may one more job be submitted under the cap? `queued`: this machine's jobs pending or being submitted. */
export function capDecision(queued: number, cap: number): "go" | "wait" {
  return cap <= 0 || queued < cap ? "go" : "wait";
}

export interface StateUpdate {
  id: string;
  state: string;
  done: boolean;
  /** the scheduler's status as JSON */
  status: string;
  /** the row's changed_at in the rows the poll was made for (read before it was asked) */
  seenChangedAt?: number | null;
}

const me = () => ({ pid: process.pid, start_time: selfStart() });
/** Finished jobs' rows are kept this long for late readers, then pruned by the leader. */
const KEEP_DONE_MS = 10 * 60_000;

export class JobWatchTable {
  constructor(
    readonly s: StateDb,
    readonly endpoint: string,
  ) {}

  /** Starts following `ids` (as this process); already followed ones keep their state. */
  follow(ids: readonly string[], now = Date.now()): Promise<void> {
    const { pid, start_time } = me();
    return this.s.write("following jobs", (db) => {
      const q = db.query(
        `INSERT INTO job_watch (endpoint, job_id, pid, start_time, followed_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (endpoint, job_id) DO UPDATE SET pid = ?3, start_time = ?4`,
      );
      for (const id of ids) q.run(this.endpoint, id, pid, start_time, now);
    });
  }

  unfollow(ids: readonly string[]): Promise<void> {
    return this.s.write("unfollowing jobs", (db) => {
      const q = db.query("DELETE FROM job_watch WHERE endpoint = ?1 AND job_id = ?2");
      for (const id of ids) q.run(this.endpoint, id);
    });
  }

  rows(ids?: readonly string[]): Promise<WatchRow[]> {
    return this.s.read("reading followed jobs", (db) => this.rowsIn(db, ids));
  }

  private rowsIn(db: Database, ids?: readonly string[]): WatchRow[] {
    const all = db.query("SELECT * FROM job_watch WHERE endpoint = ?1").all(this.endpoint) as WatchRow[];
    if (!ids) return all;
    const want = new Set(ids);
    return all.filter((r) => want.has(r.job_id));
  }

  /** Does this process still follow an unfinished job, or wait for a cancel? (Then it stays a leader candidate.) */
  interest(): Promise<boolean> {
    const { pid, start_time } = me();
    return this.s.read("reading followed jobs", (db) => {
      const f = db
        .query("SELECT 1 FROM job_watch WHERE endpoint = ?1 AND pid = ?2 AND start_time = ?3 AND done = 0 LIMIT 1")
        .get(this.endpoint, pid, start_time);
      const c = db.query("SELECT 1 FROM job_cancels WHERE endpoint = ?1 AND done_at IS NULL LIMIT 1").get(this.endpoint);
      return f !== null || c !== null;
    });
  }

  /** Leads if the lease is free or ours (renewing it); reports whether we lead. */
  async lead(staleMs: number, now = Date.now()): Promise<boolean> {
    const self = me();
    // Followers look often: a read, and the write lock only when the lease looks free or ours.
    const seen = await this.leader();
    if (leaseVerdict(seen, self, now, staleMs, probeHolder) === "held") return false;
    return this.s.write("taking the scheduler broker lease", (db) => {
      const row = db.query("SELECT pid, start_time, renewed_at FROM broker_leaders WHERE endpoint = ?1").get(this.endpoint) as LeaderRow | null;
      const v = leaseVerdict(row, self, now, staleMs, probeHolder);
      if (v === "held") return false;
      db.query(
        `INSERT INTO broker_leaders (endpoint, pid, start_time, renewed_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (endpoint) DO UPDATE SET pid = ?2, start_time = ?3, renewed_at = ?4`,
      ).run(this.endpoint, self.pid, self.start_time, now);
      return true;
    });
  }

  /** Who leads now (for tests and diagnostics). */
  leader(): Promise<LeaderRow | null> {
    return this.s.read("reading the scheduler broker lease", (db) =>
      db.query("SELECT pid, start_time, renewed_at FROM broker_leaders WHERE endpoint = ?1").get(this.endpoint) as LeaderRow | null);
  }

  /** Gives the lease up if we hold it; synchronous so it works on exit. */
  resign(): void {
    const { pid, start_time } = me();
    try {
      // Most processes never led: a read (no lock) says so, and only the holder waits for the write lock.
      const holder = "SELECT pid, start_time FROM broker_leaders WHERE endpoint = ?1";
      const row = this.s.db.query(holder).get(this.endpoint) as LeaderRow | null;
      if (!row || row.pid !== pid || row.start_time !== start_time) return;
      this.s.writeSync("giving up the scheduler broker lease", (db) =>
        db.query("DELETE FROM broker_leaders WHERE endpoint = ?1 AND pid = ?2 AND start_time = ?3").run(this.endpoint, pid, start_time));
    } catch {
      // Then the next candidate finds a dead or stale holder.
    }
  }

  /** The leader's look before a tick: reap rows of dead followers, prune old finished ones; all rows left. */
  sweep(now = Date.now()): Promise<WatchRow[]> {
    return this.s.write("sweeping followed jobs", (db) => {
      const rows = this.rowsIn(db);
      const del = db.query("DELETE FROM job_watch WHERE endpoint = ?1 AND job_id = ?2");
      const left: WatchRow[] = [];
      for (const r of rows) {
        const old = r.done && r.checked_at !== null && now - r.checked_at > KEEP_DONE_MS;
        if (old || !probeHolder(r)) del.run(this.endpoint, r.job_id);
        else left.push(r);
      }
      db.query("DELETE FROM job_cancels WHERE endpoint = ?1 AND done_at IS NOT NULL AND done_at < ?2").run(this.endpoint, now - KEEP_DONE_MS);
      db.query("DELETE FROM job_submits WHERE endpoint = ?1 AND since < ?2").run(this.endpoint, now - 24 * 3600_000);
      return left;
    });
  }

  /**
   * Writes the states a poll asked at `askedAt` found; changed_at moves only when the state word
   * changed. A touch the poll saw (seenChangedAt) counts as answered even when it is marked a
   * millisecond later than the question; a touch it did not see stays after checked_at, so the
   * row is polled again.
   */
  record(updates: readonly StateUpdate[], askedAt = Date.now()): Promise<void> {
    return this.s.write("recording job states", (db) => {
      const q = db.query(
        `UPDATE job_watch SET changed_at = CASE WHEN state IS ?3 THEN changed_at ELSE ?6 END,
           state = ?3, done = ?4, status = ?5, error = NULL, checked_at = ?6 WHERE endpoint = ?1 AND job_id = ?2`,
      );
      for (const u of updates) {
        q.run(this.endpoint, u.id, u.state, u.done ? 1 : 0, u.status, Math.max(askedAt, u.seenChangedAt ?? 0));
      }
    });
  }

  /**
   * A poll failed: its readers get the error (JSON) instead of waiting. checked_at stays the time of
   * the last answer, so readers can tell a blip (a recent state) from a lasting failure.
   */
  recordError(ids: readonly string[], error: string): Promise<void> {
    return this.s.write("recording a job poll failure", (db) => {
      const q = db.query("UPDATE job_watch SET error = ?3 WHERE endpoint = ?1 AND job_id = ?2");
      for (const id of ids) q.run(this.endpoint, id, error);
    });
  }

  /**
   * Something happened to these jobs (a cancel was sent, a start notice came): poll them quickly
   * again. The mark (returned per job) is later than any poll asked before the touch, even one in
   * the same millisecond: a reader waiting for checked_at >= mark gets a state asked after it.
   */
  touch(ids: readonly string[], now = Date.now()): Promise<Map<string, number>> {
    return this.s.write("marking jobs changed", (db) => {
      const q = db.query<{ changed_at: number }, [string, string, number]>(
        `UPDATE job_watch SET changed_at = MAX(?3 + 1, IFNULL(checked_at + 1, 0))
           WHERE endpoint = ?1 AND job_id = ?2 RETURNING changed_at`,
      );
      const marks = new Map<string, number>();
      for (const id of ids) {
        const row = q.get(this.endpoint, id, now);
        if (row) marks.set(id, row.changed_at);
      }
      return marks;
    });
  }

  /** Queues cancels for the leader; one already queued and not yet done stays queued. */
  requestCancel(ids: readonly string[], now = Date.now()): Promise<void> {
    return this.s.write("queueing job cancels", (db) => {
      const q = db.query(
        `INSERT INTO job_cancels (endpoint, job_id, requested_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (endpoint, job_id) DO UPDATE SET requested_at = ?3, done_at = NULL, error = NULL WHERE done_at IS NOT NULL`,
      );
      for (const id of ids) q.run(this.endpoint, id, now);
    });
  }

  pendingCancels(): Promise<string[]> {
    return this.s.read("reading queued cancels", (db) =>
      (db.query("SELECT job_id FROM job_cancels WHERE endpoint = ?1 AND done_at IS NULL ORDER BY requested_at")
        .all(this.endpoint) as { job_id: string }[]).map((r) => r.job_id));
  }

  /** The leader's answer to queued cancels: null error means cancelled (or already finished). */
  recordCancels(ids: readonly string[], error: string | null, now = Date.now()): Promise<void> {
    return this.s.write("recording job cancels", (db) => {
      const q = db.query("UPDATE job_cancels SET done_at = ?3, error = ?4 WHERE endpoint = ?1 AND job_id = ?2 AND done_at IS NULL");
      for (const id of ids) q.run(this.endpoint, id, now, error);
    });
  }

  cancelResults(ids: readonly string[]): Promise<Map<string, { done: boolean; error: string | null }>> {
    return this.s.read("reading cancel results", (db) => {
      const q = db.query("SELECT done_at, error FROM job_cancels WHERE endpoint = ?1 AND job_id = ?2");
      const out = new Map<string, { done: boolean; error: string | null }>();
      for (const id of ids) {
        const r = q.get(this.endpoint, id) as { done_at: number | null; error: string | null } | null;
        // A row gone (pruned) was done long ago.
        out.set(id, { done: r === null || r.done_at !== null, error: r?.error ?? null });
      }
      return out;
    });
  }

  /**
   * Under the cap: registers a submit in flight (its id, to release) and says "go"; at the cap says
   * "wait". Counted: this machine's followed jobs not known to have left the queue, plus live submits.
   */
  reserveSubmit(cap: number, now = Date.now()): Promise<{ decision: "go"; id: number } | { decision: "wait"; queued: number }> {
    const { pid, start_time } = me();
    return this.s.write("reserving a queue slot", (db) => {
      const queued = this.queuedIn(db);
      if (capDecision(queued, cap) === "wait") return { decision: "wait" as const, queued };
      const ins = db.query("INSERT INTO job_submits (endpoint, pid, start_time, since) VALUES (?1, ?2, ?3, ?4)");
      const id = Number(ins.run(this.endpoint, pid, start_time, now).lastInsertRowid);
      return { decision: "go" as const, id };
    });
  }

  /** Ends a submit in flight (after it failed, or after its job is followed). */
  releaseSubmit(id: number): Promise<void> {
    return this.s.write("releasing a queue slot", (db) => void db.query("DELETE FROM job_submits WHERE id = ?1").run(id));
  }

  /** Jobs of this machine not known to have finished (queued or running), of live followers. */
  active(): Promise<number> {
    return this.s.read("counting followed jobs", (db) =>
      (db.query("SELECT pid, start_time FROM job_watch WHERE endpoint = ?1 AND done = 0").all(this.endpoint) as LeaderRow[])
        .filter(probeHolder).length);
  }

  /** Jobs of this machine queued (pending, or not yet polled) or being submitted. */
  queued(): Promise<number> {
    return this.s.read("counting queued jobs", (db) => this.queuedIn(db));
  }

  private queuedIn(db: Database): number {
    const jobs = db
      .query("SELECT pid, start_time FROM job_watch WHERE endpoint = ?1 AND done = 0 AND (state IS NULL OR state = 'pending')")
      .all(this.endpoint) as LeaderRow[];
    const subs = db.query("SELECT pid, start_time FROM job_submits WHERE endpoint = ?1").all(this.endpoint) as LeaderRow[];
    return jobs.filter(probeHolder).length + subs.filter(probeHolder).length;
  }
}
