// The state database (bun:sqlite), shared by every nsh process on the machine. Under 16+ processes
// at once SQLite reports contention as errors (SQLITE_BUSY, and under heavy load SQLITE_PROTOCOL:
// Nix and Hydra learned this the hard way), so every access goes through withRetry.
import { Database } from "bun:sqlite";
import path from "node:path";
import { DEFAULT_RETRY, nextRetryDelay, type RetryPolicy } from "./backoff.ts";
import { MIGRATIONS, type Migration } from "./schema.ts";

export const DB_FILE = "state.db";

// Primary result codes worth retrying. bun:sqlite gives the EXTENDED code in `errno` (517 for
// SQLITE_BUSY_SNAPSHOT, 261 for SQLITE_BUSY_RECOVERY, 262 for SQLITE_LOCKED_SHAREDCACHE) and its
// name in `code`; the low byte is the primary code. The message does not tell them apart
// ("database is locked" for both BUSY and BUSY_SNAPSHOT).
const SQLITE_BUSY = 5;
const SQLITE_LOCKED = 6;
const SQLITE_PROTOCOL = 15;

/** Pure: is this error one that a later try may not hit (contention rather than a real fault)? */
export function isRetryable(e: unknown): boolean {
  if (typeof e !== "object" || e === null || (e as Error).name !== "SQLiteError") return false;
  const { errno, code } = e as { errno?: unknown; code?: unknown };
  if (typeof errno === "number") return [SQLITE_BUSY, SQLITE_LOCKED, SQLITE_PROTOCOL].includes(errno & 0xff);
  return typeof code === "string" && /^SQLITE_(BUSY|LOCKED|PROTOCOL)/.test(code);
}

export class StateDbError extends Error {
  constructor(
    readonly file: string,
    readonly op: string,
    readonly code: string | undefined,
    readonly attempts: number,
    cause: unknown,
  ) {
    const msg = cause instanceof Error ? cause.message : String(cause);
    const tries = attempts > 1 ? ` after ${attempts} attempts` : "";
    const hint = code !== undefined && isRetryable(cause) ? "; another process keeps the database locked (fuser -v it to see which)" : "";
    super(`state database ${file}: ${op} failed${tries}: ${msg}${code ? ` (${code})` : ""}${hint}`, { cause });
  }
}

export interface RetryOptions {
  /** What is being done, for the final error ("recording valid paths"). */
  op: string;
  /** The database file, for the final error. */
  file: string;
  policy?: Partial<RetryPolicy>;
  random?: () => number;
  now?: () => number;
}

/** Retries seen by this process since it started, by code: for diagnostics and the load tests. */
export const retryStats = { retries: 0, gaveUp: 0, byCode: {} as Record<string, number>, byOp: {} as Record<string, number> };

function step(e: unknown, attempt: number, t0: number, o: RetryOptions): number {
  const codeOf = (x: unknown) => (x as { code?: string }).code;
  if (!isRetryable(e)) {
    if (e instanceof StateDbError) throw e;
    throw new StateDbError(o.file, o.op, codeOf(e), attempt, e);
  }
  const policy = { ...DEFAULT_RETRY, ...o.policy };
  const delay = nextRetryDelay(attempt, (o.now ?? Date.now)() - t0, policy, (o.random ?? Math.random)());
  if (delay === undefined) {
    retryStats.gaveUp++;
    throw new StateDbError(o.file, o.op, codeOf(e), attempt, e);
  }
  retryStats.retries++;
  const code = codeOf(e) ?? "?";
  retryStats.byCode[code] = (retryStats.byCode[code] ?? 0) + 1;
  retryStats.byOp[o.op] = (retryStats.byOp[o.op] ?? 0) + 1;
  return delay;
}

/** Runs fn, retrying on contention with backoff; any other error, or giving up, is a StateDbError. */
export async function withRetry<T>(fn: () => T | Promise<T>, o: RetryOptions): Promise<T> {
  const t0 = (o.now ?? Date.now)();
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      await Bun.sleep(step(e, attempt, t0, o));
    }
  }
}

/** withRetry for the few places that cannot await (releasing a lease from an exit handler, opening). */
export function withRetrySync<T>(fn: () => T, o: RetryOptions): T {
  const t0 = (o.now ?? Date.now)();
  for (let attempt = 1; ; attempt++) {
    try {
      return fn();
    } catch (e) {
      Bun.sleepSync(step(e, attempt, t0, o));
    }
  }
}

export interface StateDbOptions {
  /**
   * SQLite's own wait for a lock before it reports SQLITE_BUSY; it blocks the event loop (bun:sqlite
   * is synchronous), withRetry's waits do not. 100 ms, measured with 32 processes on 2 CPUs: 0 left
   * everything to withRetry (~1500 retries, multi-second worst cases: sleeping processes lose the
   * lock to ones that keep trying); 1000 gave almost no retries but stalls of up to a second;
   * 100 gave ~50-300 retries and worst cases of 0.2-0.7 s.
   */
  busyTimeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  migrations?: readonly Migration[];
}

export class StateDb {
  readonly file: string;
  readonly db: Database;
  private readonly retry: Partial<RetryPolicy> | undefined;

  constructor(file: string, db: Database, retry: Partial<RetryPolicy> | undefined) {
    this.file = file;
    this.db = db;
    this.retry = retry;
  }

  private opts(op: string): RetryOptions {
    return { op, file: this.file, ...(this.retry ? { policy: this.retry } : {}) };
  }

  /** A read; in WAL mode it does not wait for writers, but retries SQLITE_PROTOCOL and recovery. */
  read<T>(op: string, fn: (db: Database) => T): Promise<T> {
    return withRetry(() => fn(this.db), this.opts(op));
  }

  /**
   * A write transaction. BEGIN IMMEDIATE takes the write lock up front: a transaction that reads
   * first and upgrades later gets SQLITE_BUSY_SNAPSHOT, which no busy_timeout waits out. fn must be
   * synchronous so no other work on this connection interleaves with the transaction.
   */
  write<T>(op: string, fn: (db: Database) => T): Promise<T> {
    return withRetry(() => this.txn(fn), this.opts(op));
  }

  writeSync<T>(op: string, fn: (db: Database) => T): T {
    return withRetrySync(() => this.txn(fn), this.opts(op));
  }

  private txn<T>(fn: (db: Database) => T): T {
    if (this.db.inTransaction) throw new Error(`state database ${this.file}: nested write transaction`);
    this.db.run("BEGIN IMMEDIATE");
    try {
      const out = fn(this.db);
      this.db.run("COMMIT");
      return out;
    } catch (e) {
      // A failed COMMIT (SQLITE_BUSY) leaves the transaction open: roll back before the retry.
      if (this.db.inTransaction) this.db.run("ROLLBACK");
      throw e;
    }
  }

  close(): void {
    this.db.close(false);
  }
}

/** Opens (creating if need be) the state database in `dir` and brings its schema up to date. */
export function openStateDb(dir: string, o: StateDbOptions = {}): StateDb {
  const file = path.join(dir, DB_FILE);
  const retry = (op: string) => ({ op, file, ...(o.retry ? { policy: o.retry } : {}) });
  const db = withRetrySync(() => new Database(file, { create: true, readwrite: true, strict: true }), retry("opening"));
  try {
    // Per connection, before anything else: waits then happen inside SQLite first.
    db.run(`PRAGMA busy_timeout = ${Math.max(0, Math.floor(o.busyTimeoutMs ?? 100))}`);
    // Persistent in the file; switching needs a moment's exclusive lock, hence the retry when 32
    // processes open a new database at once.
    const mode = withRetrySync(() => (db.query("PRAGMA journal_mode = WAL").get() as { journal_mode: string }).journal_mode, retry("enabling WAL"));
    if (mode.toLowerCase() !== "wal") {
      throw new StateDbError(file, "enabling WAL", undefined, 1, new Error(`journal_mode is ${mode}: is the state directory on a network filesystem?`));
    }
    // In WAL mode NORMAL loses at most the last transactions on power loss, never consistency;
    // this state is a cache and leases of processes a power loss killed anyway.
    db.run("PRAGMA synchronous = NORMAL");
    const s = new StateDb(file, db, o.retry);
    migrate(s, o.migrations ?? MIGRATIONS);
    return s;
  } catch (e) {
    db.close(false);
    throw e;
  }
}

export function schemaVersion(db: Database): number {
  return (db.query("PRAGMA user_version").get() as { user_version: number }).user_version;
}

function migrate(s: StateDb, migrations: readonly Migration[]): void {
  // Most opens find the schema current: check without the write lock first.
  if (withRetrySync(() => schemaVersion(s.db), { op: "reading the schema version", file: s.file }) >= migrations.length) return;
  s.writeSync("migrating the schema", (db) => {
    // Re-read under the lock: another process may have migrated in between.
    const from = schemaVersion(db);
    for (let v = from; v < migrations.length; v++) migrations[v]!(db);
    // A newer nsh's database (from > length) is left alone: migrations only add (see schema.ts).
    if (from < migrations.length) db.run(`PRAGMA user_version = ${migrations.length}`);
  });
}
