// Expected: the state directory resolves as documented and is created 0700 (a clear error naming it
// otherwise); the database opens in WAL mode with synchronous=NORMAL, migrates once by user_version
// and leaves a newer schema alone; contention errors are recognised by their codes; withRetry gives
// up on a permanently locked database within its time bound, naming the file and the operation;
// the path cache answers, expires, forgets and prunes through the real database.
import { Database } from "bun:sqlite";
import { afterAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ensureStateDir, StateDirError, stateDir } from "../../src/state/dir.ts";
import { isRetryable, openStateDb, retryStats, schemaVersion, StateDbError, withRetry } from "../../src/state/db.ts";
import { PathCache } from "../../src/state/path-cache.ts";
import { MIGRATIONS } from "../../src/state/schema.ts";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-state-"));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => ensureStateDir({ NSH_STATE_DIR: path.join(root, `d${n++}`) });

describe("stateDir", () => {
  test.each([
    [{ NSH_STATE_DIR: "/x/y" }, 0, "/x/y"],
    [{ NSH_STATE_DIR: "/x/y", XDG_STATE_HOME: "/s" }, 1000, "/x/y"],
    [{}, 0, "/var/lib/nsh"],
    [{ XDG_STATE_HOME: "/s" }, 0, "/var/lib/nsh"],
    [{ XDG_STATE_HOME: "/s" }, 1000, "/s/nsh"],
    [{ XDG_STATE_HOME: "rel" }, 1000, "/home/u/.local/state/nsh"], // relative: invalid per XDG
    [{ NSH_STATE_DIR: "", XDG_STATE_HOME: "" }, 1000, "/home/u/.local/state/nsh"],
    [{ HOME: "/h" }, 1000, "/h/.local/state/nsh"],
  ] as const)("%o uid %d → %s", (env, uid, want) => {
    expect(stateDir(env, uid, "/home/u")).toBe(want);
  });

  test("created 0700 with its parents; an existing one is accepted as it is", () => {
    const dir = path.join(root, "xdg", "deep");
    expect(ensureStateDir({ NSH_STATE_DIR: dir })).toBe(dir);
    expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
    expect(ensureStateDir({ NSH_STATE_DIR: dir })).toBe(dir);
  });

  test("cannot be created: the error names the path", () => {
    const file = path.join(root, "a-file");
    fs.writeFileSync(file, "");
    const dir = path.join(file, "nsh");
    expect(() => ensureStateDir({ NSH_STATE_DIR: dir })).toThrow(StateDirError);
    expect(() => ensureStateDir({ NSH_STATE_DIR: dir })).toThrow(`nsh state directory ${dir}: cannot create it: ENOTDIR`);
    expect(() => ensureStateDir({ NSH_STATE_DIR: file })).toThrow("exists but is not a directory");
  });
});

describe("openStateDb", () => {
  test("WAL, synchronous=NORMAL, busy_timeout, schema at the latest version", () => {
    const s = openStateDb(fresh(), { busyTimeoutMs: 250 });
    expect((s.db.query("PRAGMA journal_mode").get() as { journal_mode: string }).journal_mode).toBe("wal");
    expect((s.db.query("PRAGMA synchronous").get() as { synchronous: number }).synchronous).toBe(1);
    expect((s.db.query("PRAGMA busy_timeout").get() as { timeout: number }).timeout).toBe(250);
    expect(schemaVersion(s.db)).toBe(MIGRATIONS.length);
    s.close();
  });

  test("migrations run once, in order, and resume from the stored version", () => {
    const dir = fresh();
    const ran: number[] = [];
    const m = [0, 1, 2].map((i) => () => void ran.push(i));
    openStateDb(dir, { migrations: m.slice(0, 2) }).close();
    expect(ran).toEqual([0, 1]);
    openStateDb(dir, { migrations: m.slice(0, 2) }).close();
    expect(ran).toEqual([0, 1]);
    const s = openStateDb(dir, { migrations: m });
    expect(ran).toEqual([0, 1, 2]);
    expect(schemaVersion(s.db)).toBe(3);
    s.close();
    // An older nsh on a newer database: no error, version untouched.
    const old = openStateDb(dir, { migrations: m.slice(0, 1) });
    expect(schemaVersion(old.db)).toBe(3);
    old.close();
  });

  test("a failing migration rolls back entirely and names the file", () => {
    const dir = fresh();
    const bad = [(db: Database) => db.run("CREATE TABLE a (x)"), () => { throw new Error("boom"); }];
    expect(() => openStateDb(dir, { migrations: bad })).toThrow(`state database ${path.join(dir, "state.db")}: migrating the schema failed: boom`);
    const s = openStateDb(dir, { migrations: [] });
    expect(schemaVersion(s.db)).toBe(0);
    expect(s.db.query("SELECT name FROM sqlite_master WHERE name = 'a'").all()).toEqual([]);
    s.close();
  });
});

describe("contention", () => {
  test("bun:sqlite reports BUSY, BUSY_SNAPSHOT and LOCKED as SQLiteError with extended errno", () => {
    const dir = fresh();
    const a = openStateDb(dir, { busyTimeoutMs: 0 });
    const b = openStateDb(dir, { busyTimeoutMs: 0 });
    const seen: { code?: string; errno?: number; message: string; retry: boolean }[] = [];
    const grab = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        const x = e as { code?: string; errno?: number; message: string };
        seen.push({ code: x.code, errno: x.errno, message: x.message, retry: isRetryable(e) });
      }
    };
    a.db.run("CREATE TABLE t (x)");
    a.db.run("BEGIN IMMEDIATE");
    grab(() => b.db.run("BEGIN IMMEDIATE"));
    a.db.run("INSERT INTO t VALUES (1)");
    a.db.run("COMMIT");
    // A read transaction whose snapshot went stale cannot become a write one.
    b.db.run("BEGIN");
    b.db.query("SELECT * FROM t").all();
    a.db.run("INSERT INTO t VALUES (2)");
    grab(() => b.db.run("INSERT INTO t VALUES (3)"));
    b.db.run("ROLLBACK");
    grab(() => {
      const it = a.db.query("SELECT * FROM t").iterate();
      it.next();
      a.db.run("DROP TABLE t");
    });
    grab(() => a.db.run("SELEC 1"));
    expect(seen).toEqual([
      { code: "SQLITE_BUSY", errno: 5, message: "database is locked", retry: true },
      { code: "SQLITE_BUSY_SNAPSHOT", errno: 517, message: "database is locked", retry: true },
      { code: "SQLITE_LOCKED", errno: 6, message: "database table is locked", retry: true },
      { code: "SQLITE_ERROR", errno: 1, message: 'near "SELEC": syntax error', retry: false },
    ]);
    expect(isRetryable(Object.assign(new Error("locking protocol"), { name: "SQLiteError", errno: 15, code: "SQLITE_PROTOCOL" }))).toBe(true);
    expect(isRetryable(Object.assign(new Error("x"), { name: "SQLiteError", code: "SQLITE_BUSY_RECOVERY" }))).toBe(true);
    expect(isRetryable(new Error("database is locked"))).toBe(false);
    a.close();
    b.close();
  });

  test("withRetry gives up on a permanently locked database, naming file, operation and code", async () => {
    const dir = fresh();
    const holder = new Database(path.join(dir, "state.db"));
    const s = openStateDb(dir, { busyTimeoutMs: 20, retry: { maxTotalMs: 600 } });
    holder.run("BEGIN EXCLUSIVE");
    const before = retryStats.retries;
    const t0 = Date.now();
    const err = await s.write("recording test rows", (db) => db.run("CREATE TABLE u (x)")).catch((e) => e);
    const took = Date.now() - t0;
    expect(err).toBeInstanceOf(StateDbError);
    const msg = (err as Error).message;
    expect(msg).toStartWith(`state database ${path.join(dir, "state.db")}: recording test rows failed after `);
    expect(msg).toContain("database is locked (SQLITE_BUSY)");
    expect(msg).toContain("another process keeps the database locked");
    expect((err as StateDbError).attempts).toBeGreaterThan(3);
    expect(retryStats.retries - before).toBe((err as StateDbError).attempts - 1);
    expect(took).toBeGreaterThanOrEqual(600);
    expect(took).toBeLessThan(600 + 4000); // seen: ~630 ms; a loaded CI box may add seconds of scheduling
    // Released: the same call succeeds.
    holder.run("ROLLBACK");
    await s.write("recording test rows", (db) => db.run("CREATE TABLE u (x)"));
    holder.close();
    s.close();
  });

  test("withRetry: a non-contention error is not retried and is wrapped with file and op", async () => {
    let calls = 0;
    const err = await withRetry(() => {
      calls++;
      throw Object.assign(new Error("disk I/O error"), { name: "SQLiteError", errno: 10, code: "SQLITE_IOERR" });
    }, { op: "reading", file: "/x/state.db" }).catch((e) => e);
    expect(calls).toBe(1);
    expect((err as Error).message).toBe("state database /x/state.db: reading failed: disk I/O error (SQLITE_IOERR)");
  });
});

describe("path cache on the database", () => {
  test("record, look up, forget, expire, prune oldest", async () => {
    const s = openStateDb(fresh());
    let now = 1_000_000_000;
    const c = new PathCache(s, { ttlMs: 1000, maxEntries: 10 }, () => now);
    const h = "root@node1:22?store=/x";
    await c.recordValid(h, ["/nix/store/a", "/nix/store/b"]);
    expect(await c.knownValid(h, ["/nix/store/a", "/nix/store/b", "/nix/store/c"])).toEqual(new Set(["/nix/store/a", "/nix/store/b"]));
    expect(await c.knownValid("other", ["/nix/store/a"])).toEqual(new Set());
    await c.forget(h, ["/nix/store/a"]);
    expect(await c.knownValid(h, ["/nix/store/a", "/nix/store/b"])).toEqual(new Set(["/nix/store/b"]));
    now += 1001;
    expect(await c.knownValid(h, ["/nix/store/b"])).toEqual(new Set());
    // Seen again: fresh again.
    await c.recordValid(h, ["/nix/store/b"]);
    expect(await c.knownValid(h, ["/nix/store/b"])).toEqual(new Set(["/nix/store/b"]));
    // Over the bound of 10: pruned to 9, the oldest first.
    for (let i = 0; i < 12; i++) {
      now += 1;
      await c.recordValid(h, [`/nix/store/p${i}`]);
    }
    const count = () => (s.db.query("SELECT count(*) AS n FROM valid_paths").get() as { n: number }).n;
    expect(count()).toBeLessThanOrEqual(10);
    expect(await c.knownValid(h, ["/nix/store/p11", "/nix/store/b"])).toEqual(new Set(["/nix/store/p11"]));
    await c.forgetHost(h);
    expect(count()).toBe(0);
    s.close();
  });
});
