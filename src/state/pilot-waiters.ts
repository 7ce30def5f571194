// Builds waiting for a pilot slot (pilot-max-jobs reached) queue here. A hook that finds no idle
// slot of its shape registers; whoever makes a slot idle (a build that ended, a job that started
// with more slots) hands it, in the same transaction, to the longest-waiting live build it fits,
// and touches that waiter's wake file. Each waiter sleeps on its own file (inotify) and looks at
// its own row with a read. Before, each waiter took the write lock four times a second to look: 30
// waiters kept the lock busy, and slots stood idle ~40 % of a wide build (bench/README.md, issue 11);
// then one wake file for all woke every waiter at every hand-over (~10 ms of CPU per waiting second).
import type { Database } from "bun:sqlite";
import fs from "node:fs";
import path from "node:path";

/** The directory of the waiters' wake files (one per waiter, named by its id). */
export const WAKE_DIR = "pilot-wake";
/** A wake file this old belongs to a waiter that was killed: the next waiter removes it. */
const STALE_WAKE_MS = 3600_000;

export interface Waiter {
  id: number;
  endpoint: string;
  resourceKey: string;
  /** the build's requested time (0: none), for pilotFits */
  needMs: number;
  marginMs: number;
  pid: number;
  startTime: number;
  /** the slot handed to this waiter (its row is busy for the waiter's process); null while waiting */
  granted: number | null;
}

interface Raw {
  id: number;
  endpoint: string;
  resource_key: string;
  need_ms: number;
  margin_ms: number;
  pid: number;
  start_time: number;
  granted: number | null;
}

const fromRaw = (r: Raw): Waiter => ({
  id: r.id, endpoint: r.endpoint, resourceKey: r.resource_key, needMs: r.need_ms, marginMs: r.margin_ms,
  pid: r.pid, startTime: r.start_time, granted: r.granted,
});

export function ensureWaiters(db: Database): void {
  db.run(`CREATE TABLE IF NOT EXISTS pilot_waiters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint TEXT NOT NULL,
    resource_key TEXT NOT NULL,
    need_ms INTEGER NOT NULL,
    margin_ms INTEGER NOT NULL,
    pid INTEGER NOT NULL,
    start_time INTEGER NOT NULL,
    granted INTEGER
  )`);
}

/**
 * Pure: who gets a slot of `shape` that just became idle: the first waiter (oldest id) of that shape
 * that has no slot yet, is alive and whose build fits what is left of the job's time.
 */
export function chooseWaiter(
  waiters: readonly Waiter[],
  shape: { endpoint: string; resourceKey: string },
  fits: (w: Waiter) => boolean,
  alive: (w: Waiter) => boolean,
): Waiter | undefined {
  const inLine = (w: Waiter) =>
    w.granted === null && w.endpoint === shape.endpoint && w.resourceKey === shape.resourceKey;
  return [...waiters].sort((a, b) => a.id - b.id).find((w) => inLine(w) && fits(w) && alive(w));
}

export function listWaiters(db: Database): Waiter[] {
  ensureWaiters(db);
  return (db.query("SELECT * FROM pilot_waiters ORDER BY id").all() as Raw[]).map(fromRaw);
}

export function addWaiter(db: Database, w: Omit<Waiter, "id" | "granted">): number {
  ensureWaiters(db);
  const insert = "INSERT INTO pilot_waiters (endpoint, resource_key, need_ms, margin_ms, pid, start_time, granted) " +
    "VALUES (?, ?, ?, ?, ?, ?, NULL)";
  const row = db.query(insert).run(w.endpoint, w.resourceKey, w.needMs, w.marginMs, w.pid, w.startTime);
  return Number(row.lastInsertRowid);
}

/** Hands slot (idle, of shape) to a waiter: its row becomes busy for the waiter's process. In a write transaction. */
export function grantSlot(
  db: Database,
  slot: number,
  shape: { endpoint: string; resourceKey: string },
  fits: (w: Waiter) => boolean,
  alive: (w: Waiter) => boolean,
): Waiter | undefined {
  // Only the candidates in line are probed; a dead one met on the way leaves the queue.
  const dead = new Set<number>();
  const w = chooseWaiter(listWaiters(db), shape, fits, (c) => alive(c) || (dead.add(c.id), false));
  for (const id of dead) db.run("DELETE FROM pilot_waiters WHERE id = ?", [id]);
  if (!w) return undefined;
  db.run("UPDATE pilot_jobs SET busy = 1, pid = ?, start_time = ? WHERE slot = ?", [w.pid, w.startTime, slot]);
  db.run("UPDATE pilot_waiters SET granted = ? WHERE id = ?", [slot, w.id]);
  return w;
}

/** Waiters without a slot probed per look (the oldest, likeliest gone); the others when a slot comes their way. */
const PROBED_IN_LINE = 4;

/**
 * Waiters whose hook is gone: a slot handed to one is idle again (and goes to the next waiter through
 * `regrant`); their rows are removed. Probed: all that were handed a slot, and the oldest few in line
 * (a hook killed while waiting for a shape that gets no more slots leaves no row forever). Inside a
 * write transaction, before stale pilot rows are judged.
 */
export function dropDeadWaiters(db: Database, alive: (w: Waiter) => boolean, regrant: (slot: number) => void): void {
  let inLine = 0;
  for (const w of listWaiters(db)) {
    if (w.granted === null && inLine++ >= PROBED_IN_LINE) continue;
    if (alive(w)) continue;
    db.run("DELETE FROM pilot_waiters WHERE id = ?", [w.id]);
    if (w.granted === null) continue;
    const release = "UPDATE pilot_jobs SET busy = 0 WHERE slot = ? AND pid = ? AND start_time = ?";
    db.run(release, [w.granted, w.pid, w.startTime]);
    regrant(w.granted);
  }
}

/** The slot handed to waiter `id` (null: none yet; undefined: no such waiter). A read, no lock. */
export function grantedTo(db: Database, id: number): number | null | undefined {
  const row = db.query("SELECT granted FROM pilot_waiters WHERE id = ?").get(id) as { granted: number | null } | null;
  return row ? row.granted : undefined;
}

/**
 * Waiter `id`'s place: the slot handed to it (null: none yet), and how many waiters of its shape
 * without a slot are in line before it. undefined: no such waiter. A read, no lock.
 */
export function placeInLine(db: Database, id: number): { granted: number | null; ahead: number } | undefined {
  const row = db.query(
    `SELECT w.granted AS granted, (SELECT COUNT(*) FROM pilot_waiters o WHERE o.id < w.id AND o.granted IS NULL
       AND o.endpoint = w.endpoint AND o.resource_key = w.resource_key) AS ahead
     FROM pilot_waiters w WHERE w.id = ?`,
  ).get(id) as { granted: number | null; ahead: number } | null;
  return row ?? undefined;
}

/**
 * Pure: how often a waiter with `ahead` waiters of its shape before it looks. The first few look at all
 * pilots (a write transaction) every 2 s and at their own row every 1 s; one further back every 30 s
 * and 3 s, since a slot handed to it wakes it at once. With 200 builds waiting, everyone's looks kept
 * the state database's lock and two cores busy, and slots idle (bench/README.md, sessions 11 and 12).
 */
export function waiterPace(ahead: number): { relookMs: number; readMs: number } {
  return ahead < FRONT_OF_LINE ? { relookMs: 2000, readMs: 1000 } : { relookMs: 30_000, readMs: 3000 };
}
const FRONT_OF_LINE = 4;

/** Removes waiter `id`; returns the slot it had been handed, if any. Inside a write transaction. */
export function removeWaiter(db: Database, id: number): number | null {
  const granted = grantedTo(db, id) ?? null;
  db.run("DELETE FROM pilot_waiters WHERE id = ?", [id]);
  return granted;
}

/** Wakes these waiters (after a commit that handed them slots). Never throws. */
export function wakeWaiters(stateDir: string, ids: readonly number[]): void {
  for (const id of ids) {
    try {
      // r+: only a file its waiter made (one gone has removed it); the waiters also look by the clock.
      fs.writeFileSync(path.join(stateDir, WAKE_DIR, String(id)), "1", { flag: "r+" });
    } catch {}
  }
}

export interface WaiterAlarm {
  /** the waiter it wakes */
  readonly id: number;
  /** Resolves when the wake file changes, or after ms. */
  next(ms: number): Promise<void>;
  close(): void;
}

/** Sleeps on waiter id's own wake file in stateDir (inotify); only the clock if it cannot be watched. */
export function waiterAlarm(stateDir: string, id: number): WaiterAlarm {
  const dir = path.join(stateDir, WAKE_DIR);
  const file = path.join(dir, String(id));
  let ring: (() => void) | undefined;
  let watcher: fs.FSWatcher | undefined;
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    sweepStaleWakeFiles(dir, Date.now());
    fs.writeFileSync(file, "", { mode: 0o600 });
    watcher = fs.watch(file, () => ring?.());
    watcher.on("error", () => {});
  } catch {
    watcher = undefined;
  }
  return {
    id,
    next(ms) {
      return new Promise<void>((resolve) => {
        const timer = setTimeout(done, ms);
        function done() {
          clearTimeout(timer);
          ring = undefined;
          resolve();
        }
        ring = done;
      });
    },
    close() {
      ring?.();
      watcher?.close();
      try {
        fs.unlinkSync(file);
      } catch {}
    },
  };
}

/** Removes the wake files of waiters killed long ago (a hook SIGKILLed while it waited leaves one). */
function sweepStaleWakeFiles(dir: string, now: number): void {
  for (const name of fs.readdirSync(dir)) {
    try {
      const f = path.join(dir, name);
      if (now - fs.statSync(f).mtimeMs > STALE_WAKE_MS) fs.unlinkSync(f);
    } catch {}
  }
}
