// Which store paths a remote host is known to have, shared by every nsh process through the state
// database: the hook processes of one build wave ask about the same closures (stdenv, glibc, ...)
// over and over, and each question is otherwise an SSH round trip (Nix's first ssh substituter had
// no such cache and sent every query to the remote machine).
//
// An entry can go wrong at any moment: the host's garbage collector (nightly, or min-free during
// builds) may delete the path. So entries expire, and a caller that finds one wrong forgets it.
import type { StateDb } from "./db.ts";

export interface PathCachePolicy {
  /**
   * Entries older than this are ignored and pruned. One hour: long enough to span a build wave,
   * where the same closures are asked about hundreds of times; short next to the daily GC most
   * builders run, so a path collected since is not believed for long. (A day would almost always
   * span a nightly GC; and every hit saves only one batched query, while a false hit costs a failed
   * copy or build and a retry.)
   */
  ttlMs: number;
  /**
   * Entries kept at most, over all hosts. 200k rows of ~150 bytes (+ index) is ~50 MB on disk, room
   * for a full nixpkgs closure on a couple of hosts.
   */
  maxEntries: number;
}

export const DEFAULT_PATH_CACHE: PathCachePolicy = { ttlMs: 60 * 60 * 1000, maxEntries: 200_000 };

// An entry stamped this far in the future means the clock went back: it is not trusted either.
const CLOCK_SLACK_MS = 60_000;

/** Pure: the checked_at values [lo, hi] that count as fresh at `now`. */
export function freshWindow(now: number, ttlMs: number): [number, number] {
  return [now - ttlMs, now + CLOCK_SLACK_MS];
}

export function isFresh(checkedAt: number, now: number, ttlMs: number): boolean {
  const [lo, hi] = freshWindow(now, ttlMs);
  return checkedAt >= lo && checkedAt <= hi;
}

/**
 * Pure: how many of the oldest entries to delete when `count` are stored. Over the bound, down to
 * 90% of it: pruning then happens once per tenth of the bound inserted, not at every insert.
 */
export function pruneCount(count: number, maxEntries: number): number {
  return count <= maxEntries ? 0 : count - Math.floor(maxEntries * 0.9);
}

/** Pure: counting rows is a scan, so a process checks the size only after this many inserts. */
export function pruneDue(insertedSinceCheck: number, maxEntries: number): boolean {
  return insertedSinceCheck >= Math.max(1, Math.floor(maxEntries / 20));
}

// Paths go to SQLite as one JSON array parameter (json_each): one statement for any batch size.
const Q_KNOWN = `SELECT value AS path FROM json_each(?1)
  WHERE EXISTS (SELECT 1 FROM valid_paths WHERE host = ?2 AND path = value AND checked_at BETWEEN ?3 AND ?4)`;
// "WHERE true" is how SQLite tells an upsert's ON CONFLICT from a join clause after a SELECT.
const Q_RECORD = `INSERT INTO valid_paths (host, path, checked_at) SELECT ?1, value, ?2 FROM json_each(?3) WHERE true
  ON CONFLICT (host, path) DO UPDATE SET checked_at = excluded.checked_at`;
const Q_FORGET = "DELETE FROM valid_paths WHERE host = ?1 AND path IN (SELECT value FROM json_each(?2))";

export class PathCache {
  private readonly policy: PathCachePolicy;
  private readonly now: () => number;
  // Start due, so a process prunes after its first batch (leftovers of processes that never got to).
  private inserted: number;

  constructor(
    private readonly s: StateDb,
    policy: Partial<PathCachePolicy> = {},
    now: () => number = Date.now,
  ) {
    this.policy = { ...DEFAULT_PATH_CACHE, ...policy };
    this.now = now;
    this.inserted = Number.MAX_SAFE_INTEGER;
  }

  /** The subset of `paths` that `host` was recently seen to have. */
  async knownValid(host: string, paths: readonly string[]): Promise<Set<string>> {
    if (paths.length === 0) return new Set();
    const [lo, hi] = freshWindow(this.now(), this.policy.ttlMs);
    const rows = await this.s.read("looking up cached valid paths", (db) =>
      db.query(Q_KNOWN).all(JSON.stringify(paths), host, lo, hi) as { path: string }[],
    );
    return new Set(rows.map((r) => r.path));
  }

  /** `host` has `paths` (it said so, or we just copied them there). */
  async recordValid(host: string, paths: readonly string[]): Promise<void> {
    if (paths.length === 0) return;
    const now = this.now();
    await this.s.write("recording valid paths", (db) => {
      db.query(Q_RECORD).run(host, now, JSON.stringify(paths));
    });
    this.inserted += paths.length;
    if (pruneDue(this.inserted, this.policy.maxEntries)) await this.prune();
  }

  /** Entries found wrong (the host no longer has the path): drop them. */
  async forget(host: string, paths: readonly string[]): Promise<void> {
    if (paths.length === 0) return;
    await this.s.write("forgetting valid paths", (db) => {
      db.query(Q_FORGET).run(host, JSON.stringify(paths));
    });
  }

  /** Everything about `host`, e.g. after its store was wiped. */
  async forgetHost(host: string): Promise<void> {
    await this.s.write("forgetting a host's valid paths", (db) => {
      db.query("DELETE FROM valid_paths WHERE host = ?1").run(host);
    });
  }

  /** Drops expired entries, then the oldest ones over the size bound; returns how many went. */
  async prune(): Promise<number> {
    this.inserted = 0;
    const [lo, hi] = freshWindow(this.now(), this.policy.ttlMs);
    return this.s.write("pruning the path cache", (db) => {
      let gone = db.query("DELETE FROM valid_paths WHERE checked_at < ?1 OR checked_at > ?2").run(lo, hi).changes;
      const { n } = db.query("SELECT count(*) AS n FROM valid_paths").get() as { n: number };
      const excess = pruneCount(n, this.policy.maxEntries);
      if (excess > 0) {
        gone += db
          .query("DELETE FROM valid_paths WHERE (host, path) IN (SELECT host, path FROM valid_paths ORDER BY checked_at LIMIT ?1)")
          .run(excess).changes;
      }
      return gone;
    });
  }
}
