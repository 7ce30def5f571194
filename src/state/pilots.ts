// Pilot jobs (pilot-idle-time): a build's job whose agent stays after the build, waiting for the
// next build of the same shape. A row per pilot job of this machine's hooks: busy (held by the hook
// whose build runs in it, or whose job is being submitted) or idle (listed until its idle time).
// A hook takes an idle one, or reserves a row for a job of its own while fewer than pilot-max-jobs
// of its shape live, or waits. A busy row whose hook died is forgotten: that hook's reaper cancels
// the job (or its agent leaves). The table is created here (CREATE IF NOT EXISTS), not by a
// migration, so it merges with other schema changes; it only adds.
import type { Database } from "bun:sqlite";
import path from "node:path";
import { probeHolder, selfStart } from "./budget.ts";
import type { StateDb } from "./db.ts";
import {
  addWaiter, dropDeadWaiters, ensureWaiters, grantedTo, grantSlot, placeInLine, removeWaiter, type Waiter, wakeWaiters,
} from "./pilot-waiters.ts";

export interface PilotJob {
  jobId: string;
  node: string;
  /** the job's directory on the cluster: where its agent listens */
  dir: string;
  agentPath: string;
  /** epoch ms when the job's time limit ends it; null: no limit known */
  endsAt: number | null;
  /** the job's whole time limit in ms; null: no limit known */
  limitMs: number | null;
  /** epoch ms until which the agent is sure to wait for another build */
  idleUntil: number;
  /** builds the job has served */
  builds: number;
}

export interface PilotRow {
  slot: number;
  endpoint: string;
  /** everything that shaped the job, hashed (hook/pilot-key.ts) */
  resourceKey: string;
  /** undefined while busy before its first build is over */
  job?: PilotJob;
  busy: boolean;
  pid: number;
  startTime: number;
}

export interface PilotWant {
  endpoint: string;
  resourceKey: string;
  /** the build's requested time (0: none) */
  needMs: number;
  marginMs: number;
  /** pilot jobs of this shape at most (0: no cap) */
  maxJobs: number;
}

export type PilotChoice = { take: PilotRow } | { submit: true } | { wait: number };

/**
 * Pure: whether a build that may need `needMs` fits in what remains of the pilot's time. A build
 * that asks for no time limit (0) would get the job's whole default limit in a job of its own: it
 * takes a pilot only while at least half of that remains.
 */
export function pilotFits(p: Pick<PilotJob, "endsAt" | "limitMs">, needMs: number, nowMs: number, marginMs: number): boolean {
  if (p.endsAt === null) return true;
  const need = needMs > 0 ? needMs : (p.limitMs ?? 0) / 2;
  return p.endsAt - nowMs >= need + marginMs;
}

/** Pure: rows no longer worth keeping: idle past their idle time, or busy for a hook that is gone. */
export const stalePilot = (r: PilotRow, nowMs: number, alive: (r: PilotRow) => boolean): boolean =>
  r.busy ? !alive(r) : (r.job?.idleUntil ?? 0) <= nowMs;

/**
 * Pure: take the idle pilot of this shape that fits and was idle longest (it would leave soonest);
 * else submit while fewer than maxJobs of the shape live; else wait (for how many live).
 */
export function choosePilot(live: readonly PilotRow[], want: PilotWant, nowMs: number): PilotChoice {
  const shape = live.filter((r) => r.endpoint === want.endpoint && r.resourceKey === want.resourceKey);
  // An idle pilot too near its time limit for this build cannot serve it: it is not waited for.
  const mine = shape.filter((r) => r.busy || (r.job && pilotFits(r.job, want.needMs, nowMs, want.marginMs)));
  const idle = mine.filter((r) => !r.busy).sort((a, b) => a.job!.idleUntil - b.job!.idleUntil);
  if (idle[0]) return { take: idle[0] };
  const jobs = jobsOfRows(mine);
  if (want.maxJobs <= 0 || jobs < want.maxJobs) return { submit: true };
  return { wait: jobs };
}

/** Pure: how many jobs rows stand for: the slots of one job (pilot-builds-per-job) count once, a row whose job is
 * still being submitted counts as one. */
export const jobsOfRows = (rows: readonly PilotRow[]): number =>
  new Set(rows.map((r) => (r.job ? `job ${r.job.jobId}` : `slot ${r.slot}`))).size;

function ensureTable(db: Database): void {
  db.run(`CREATE TABLE IF NOT EXISTS pilot_jobs (
    slot INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint TEXT NOT NULL,
    resource_key TEXT NOT NULL,
    job TEXT,
    busy INTEGER NOT NULL,
    pid INTEGER NOT NULL,
    start_time INTEGER NOT NULL
  )`);
}

interface Raw {
  slot: number;
  endpoint: string;
  resource_key: string;
  job: string | null;
  busy: number;
  pid: number;
  start_time: number;
}

const fromRaw = (r: Raw): PilotRow => ({
  slot: r.slot, endpoint: r.endpoint, resourceKey: r.resource_key, busy: r.busy !== 0, pid: r.pid, startTime: r.start_time,
  ...(r.job ? { job: JSON.parse(r.job) as PilotJob } : {}),
});

type Holder = Pick<PilotRow, "pid" | "startTime">;
const aliveHolder = (r: Holder) => probeHolder({ pid: r.pid, start_time: r.startTime });

/** Hands slot, if idle, to the longest-waiting live build it fits (pilot-waiters.ts). Inside a write transaction. */
function regrant(db: Database, slot: number, nowMs: number, alive: (r: Holder) => boolean): Waiter | undefined {
  const raw = db.query("SELECT * FROM pilot_jobs WHERE slot = ?").get(slot) as Raw | null;
  if (!raw || raw.busy || !raw.job) return undefined;
  const row = fromRaw(raw);
  return grantSlot(db, slot, row, (w) => pilotFits(row.job!, w.needMs, nowMs, w.marginMs), alive);
}

const stateDirOf = (s: StateDb) => path.dirname(s.file);

/**
 * One step of a hook looking for a pilot: takes one (busy for this process), reserves a slot to
 * submit, or says wait. idleOnly: never reserve (a hook whose own job is pending looks for a slot).
 * A hook told to wait is queued (the `waiter` it passes next time): a slot that becomes idle is
 * handed to it (pilot-waiters.ts), and its next step takes that slot.
 */
export async function takePilot(
  s: StateDb, want: PilotWant, nowMs = Date.now(), alive: (r: Holder) => boolean = aliveHolder, idleOnly = false,
  waiter?: number,
): Promise<{ take: PilotRow } | { submit: number } | { wait: number; waiter?: number }> {
  let woke: number[] = [];
  const out = await s.write("taking a pilot job", (db) => {
    ensureTable(db);
    ensureWaiters(db);
    // Per attempt: a retried transaction starts again from what is committed.
    woke = [];
    let queued = waiter;
    dropDeadWaiters(db, alive, (slot) => {
      const to = regrant(db, slot, nowMs, alive);
      if (to) woke.push(to.id);
    });
    if (queued !== undefined && grantedTo(db, queued) !== null) {
      const slot = removeWaiter(db, queued);
      const raw = db.query("SELECT * FROM pilot_jobs WHERE slot = ?").get(slot) as Raw | null;
      const row = raw ? fromRaw(raw) : undefined;
      if (row?.busy && row.job && row.pid === process.pid && row.startTime === selfStart()) return { take: row };
      queued = undefined; // the slot went away meanwhile: look afresh
    }
    const rows = (db.query("SELECT * FROM pilot_jobs").all() as Raw[]).map(fromRaw);
    // Idle rows past their time go at once; a busy row's hook is probed (two /proc reads) only when
    // the answer would be to wait: a dead holder of this shape frees a place under pilot-max-jobs.
    let live = rows;
    const forget = (gone: PilotRow[]) => {
      for (const r of gone) db.run("DELETE FROM pilot_jobs WHERE slot = ?", [r.slot]);
      live = live.filter((r) => !gone.includes(r));
    };
    forget(rows.filter((r) => !r.busy && stalePilot(r, nowMs, alive)));
    let choice = choosePilot(live, want, nowMs);
    if ("wait" in choice && !idleOnly) {
      const ofShape = (r: PilotRow) => r.endpoint === want.endpoint && r.resourceKey === want.resourceKey;
      const dead = live.filter((r) => r.busy && ofShape(r) && stalePilot(r, nowMs, alive));
      if (dead.length > 0) {
        forget(dead);
        choice = choosePilot(live, want, nowMs);
      }
    }
    if ("wait" in choice || ("submit" in choice && idleOnly)) {
      const jobs = "wait" in choice ? choice.wait : 0;
      if (idleOnly) return { wait: jobs };
      const me = { ...want, pid: process.pid, startTime: selfStart() };
      queued ??= addWaiter(db, me);
      return { wait: jobs, waiter: queued };
    }
    if (queued !== undefined) removeWaiter(db, queued);
    if ("take" in choice) {
      const held = [process.pid, selfStart(), choice.take.slot];
      db.run("UPDATE pilot_jobs SET busy = 1, pid = ?, start_time = ? WHERE slot = ?", held);
      return { take: { ...choice.take, busy: true, pid: process.pid, startTime: selfStart() } };
    }
    const slot = db
      .query("INSERT INTO pilot_jobs (endpoint, resource_key, job, busy, pid, start_time) VALUES (?, ?, NULL, 1, ?, ?)")
      .run(want.endpoint, want.resourceKey, process.pid, selfStart()).lastInsertRowid;
    return { submit: Number(slot) };
  });
  wakeWaiters(stateDirOf(s), woke);
  return out;
}

/** Whether waiter `id` has a slot, and how many of its shape wait before it (a read); undefined: not queued. */
export const pilotQueuePlace = (s: StateDb, id: number): Promise<{ granted: boolean; ahead: number } | undefined> =>
  s.read("looking at a pilot waiter's place", (db) => {
    const p = placeInLine(db, id); // the table exists: takePilot queued the waiter
    return p && { granted: p.granted !== null, ahead: p.ahead };
  });

/** A waiter gives up (interrupted): its row goes, and a slot handed to it meanwhile to the next waiter. */
export async function leavePilotQueue(s: StateDb, id: number): Promise<void> {
  const woke = await s.write("leaving the pilot queue", (db) => {
    ensureTable(db);
    const slot = removeWaiter(db, id);
    if (slot === null) return undefined;
    db.run("UPDATE pilot_jobs SET busy = 0 WHERE slot = ? AND pid = ?", [slot, process.pid]);
    return regrant(db, slot, Date.now(), aliveHolder);
  });
  if (woke) wakeWaiters(stateDirOf(s), [woke.id]);
}

/**
 * The build in slot's job is over and its agent stayed: the job is idle until job.idleUntil, or handed
 * at once to a waiting build. Returns the waiter's pid when it was handed on.
 */
export async function offerPilot(s: StateDb, slot: number, job: PilotJob): Promise<number | undefined> {
  const to = await s.write("offering an idle pilot job", (db) => {
    ensureTable(db);
    ensureWaiters(db);
    db.run("UPDATE pilot_jobs SET busy = 0, job = ? WHERE slot = ?", [JSON.stringify(job), slot]);
    return regrant(db, slot, Date.now(), aliveHolder);
  });
  if (to) wakeWaiters(stateDirOf(s), [to.id]);
  return to?.pid;
}

/**
 * A job with several slots runs: the submitting build's row (still busy) learns its job, and each
 * other slot is offered as idle (pilot-builds-per-job), in one transaction.
 */
export async function shareSlots(s: StateDb, slot: number, own: PilotJob, others: readonly PilotJob[]): Promise<void> {
  const handed = await s.write("offering a pilot job's other slots", (db) => {
    ensureTable(db);
    ensureWaiters(db);
    const row = db.query("SELECT endpoint, resource_key FROM pilot_jobs WHERE slot = ?").get(slot) as Raw | null;
    if (!row) return [];
    db.run("UPDATE pilot_jobs SET job = ? WHERE slot = ?", [JSON.stringify(own), slot]);
    const columns = "(endpoint, resource_key, job, busy, pid, start_time) VALUES (?, ?, ?, 0, ?, ?)";
    const insert = db.query(`INSERT INTO pilot_jobs ${columns}`);
    const to: number[] = [];
    for (const job of others) {
      const added = insert.run(row.endpoint, row.resource_key, JSON.stringify(job), process.pid, selfStart());
      const w = regrant(db, Number(added.lastInsertRowid), Date.now(), aliveHolder);
      if (w) to.push(w.id);
    }
    return to;
  });
  wakeWaiters(stateDirOf(s), handed);
}

/** The slot's job is gone (or never came): forget it, so another hook may submit. */
export function dropPilot(s: StateDb, slot: number): Promise<void> {
  return s.write("forgetting a pilot job", (db) => {
    ensureTable(db);
    db.run("DELETE FROM pilot_jobs WHERE slot = ?", [slot]);
  });
}

/** The pilot jobs known (for tests and diagnostics). */
export function listPilots(s: StateDb): Promise<PilotRow[]> {
  return s.write("listing pilot jobs", (db) => {
    ensureTable(db);
    return (db.query("SELECT * FROM pilot_jobs ORDER BY slot").all() as Raw[]).map(fromRaw);
  });
}
