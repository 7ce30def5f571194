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
];
