// The state database's schema, as migrations: migration i takes PRAGMA user_version from i to i + 1.
//
// Rules, because nsh processes of different versions run at once on one machine (an upgrade does
// not stop the builds in flight): migrations only ever ADD tables, columns and indices, so an older
// nsh keeps working on a database a newer one migrated. Anything else (a changed meaning, a dropped
// column) takes a new database file name instead of a migration.
import type { Database } from "bun:sqlite";

export type Migration = (db: Database) => void;

export const MIGRATIONS: readonly Migration[] = [
  // 0 → 1: the path cache and the transfer budget.
  (db) => {
    // checked_at: ms since the epoch when the host was last seen to have the path. No rowid:
    // (host, path) is the key and lookups go by it.
    db.run(`CREATE TABLE IF NOT EXISTS valid_paths (
      host TEXT NOT NULL,
      path TEXT NOT NULL,
      checked_at INTEGER NOT NULL,
      PRIMARY KEY (host, path)
    ) WITHOUT ROWID`);
    // For expiry and for pruning the oldest entries.
    db.run("CREATE INDEX IF NOT EXISTS valid_paths_age ON valid_paths (checked_at)");
    // A lease holder is a process: pid plus start time (in clock ticks) so a later process that got
    // the same pid is not taken for the holder. waiting = 1 while queued, 0 once granted.
    db.run(`CREATE TABLE IF NOT EXISTS leases (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      pid INTEGER NOT NULL,
      start_time INTEGER NOT NULL,
      bytes INTEGER NOT NULL,
      waiting INTEGER NOT NULL,
      since INTEGER NOT NULL
    )`);
  },
  // 1 → 2: being polite to the scheduler (rate-limit.ts, job-watch.ts): one token bucket per
  // scheduler endpoint, the jobs nsh follows with their last known state, the leader lease of
  // the process that asks the scheduler for all of them, queued cancels and submits in flight.
  (db) => {
    db.run(`CREATE TABLE IF NOT EXISTS rate_buckets (
      key TEXT PRIMARY KEY,
      tokens REAL NOT NULL,
      updated_at INTEGER NOT NULL
    )`);
    // status: the scheduler's JobStatus as JSON (opaque here); error: the last poll's failure.
    db.run(`CREATE TABLE IF NOT EXISTS job_watch (
      endpoint TEXT NOT NULL,
      job_id TEXT NOT NULL,
      pid INTEGER NOT NULL,
      start_time INTEGER NOT NULL,
      followed_at INTEGER NOT NULL,
      state TEXT,
      done INTEGER NOT NULL DEFAULT 0,
      status TEXT,
      error TEXT,
      checked_at INTEGER,
      changed_at INTEGER,
      PRIMARY KEY (endpoint, job_id)
    ) WITHOUT ROWID`);
    db.run(`CREATE TABLE IF NOT EXISTS broker_leaders (
      endpoint TEXT PRIMARY KEY,
      pid INTEGER NOT NULL,
      start_time INTEGER NOT NULL,
      renewed_at INTEGER NOT NULL
    )`);
    db.run(`CREATE TABLE IF NOT EXISTS job_cancels (
      endpoint TEXT NOT NULL,
      job_id TEXT NOT NULL,
      requested_at INTEGER NOT NULL,
      done_at INTEGER,
      error TEXT,
      PRIMARY KEY (endpoint, job_id)
    ) WITHOUT ROWID`);
    db.run(`CREATE TABLE IF NOT EXISTS job_submits (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      endpoint TEXT NOT NULL,
      pid INTEGER NOT NULL,
      start_time INTEGER NOT NULL,
      since INTEGER NOT NULL
    )`);
  },
];
