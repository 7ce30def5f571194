// A host-wide budget of bytes in flight (NARs being held or moved), shared by every nsh process on
// the machine through the state database. Hydra's queue runner ran out of memory holding several
// large NARs at once and fixed it with a token pool; nsh's pool spans processes, not threads.
//
// Each lease is a row naming its holder process (pid + start time): rows of processes that died,
// SIGKILLed or not, are reclaimed by whoever looks next, so no crash leaks budget. Waiting requests
// are rows too, served first come first served so a large NAR is not starved by a stream of small ones.
import fs from "node:fs";
import { jitteredDelay } from "./backoff.ts";
import type { StateDb } from "./db.ts";
import { isAlive, readProcStatus, readStartTime } from "../sys/proc.ts";

const MiB = 1024 * 1024;

export interface LeaseRow {
  id: number;
  pid: number;
  start_time: number;
  bytes: number;
  waiting: number;
}

export interface Assessment {
  /** Rows whose holder is gone. */
  dead: number[];
  /** Granted bytes and distinct holder processes, live rows only. */
  inFlight: number;
  holders: number;
  /** Live requests still queued (ours included if we are queued). */
  waiting: number;
  /** May our request (row `mine`, or a new one if undefined) be granted now? */
  admit: boolean;
}

/**
 * Pure: the state of the budget seen by a request for `want` bytes. A request is admitted when it
 * fits beside what is granted AND what every earlier queued request waits for: earlier requests
 * keep their place, and later small ones still pass when there is room for everybody ahead.
 */
export function assess(
  rows: readonly LeaseRow[],
  mine: number | undefined,
  want: number,
  total: number,
  alive: (r: LeaseRow) => boolean,
): Assessment {
  const dead: number[] = [];
  const pids = new Set<number>();
  let inFlight = 0;
  let ahead = 0;
  let waiting = 0;
  for (const r of rows) {
    if (r.id === mine) {
      waiting++;
      continue;
    }
    if (!alive(r)) {
      dead.push(r.id);
    } else if (r.waiting) {
      waiting++;
      if (mine === undefined || r.id < mine) ahead += r.bytes;
    } else {
      inFlight += r.bytes;
      pids.add(r.pid);
    }
  }
  return { dead, inFlight, holders: pids.size, waiting, admit: inFlight + ahead + want <= total };
}

/** Pure: is the recorded holder gone? Unknown (e.g. /proc hidden by hidepid) counts as alive. */
export function holderGone(
  recordedStart: number,
  seen: { exists: boolean; startTime?: number; state?: string },
): boolean {
  if (!seen.exists) return true;
  // Same pid, another process: the holder died and the pid was reused.
  if (seen.startTime !== undefined && seen.startTime !== recordedStart) return true;
  // Dead but not yet reaped by its parent: it will never release.
  return seen.state === "Z";
}

/** Pure: the request actually counted: a request over the total is clamped so it still goes, alone. */
export const clampRequest = (bytes: number, total: number): number => Math.max(0, Math.min(Math.ceil(bytes), total));

/** Pure: the default total, an eighth of the machine's memory and at least 64 MiB. */
export function defaultTotal(memTotalBytes: number): number {
  return Math.max(64 * MiB, Math.floor(memTotalBytes / 8));
}

export function parseMemTotal(meminfo: string): number {
  return Number(/^MemTotal:\s+(\d+) kB/m.exec(meminfo)?.[1] ?? 0) * 1024;
}

export function fmtBytes(n: number): string {
  if (n >= 1024 * MiB) return `${(n / (1024 * MiB)).toFixed(1)} GiB`;
  if (n >= MiB) return `${(n / MiB).toFixed(1)} MiB`;
  return `${(n / 1024).toFixed(1)} KiB`;
}

export function waitMessage(want: number, a: Assessment, total: number): string {
  const others = a.waiting > 1 ? `, ${a.waiting - 1} other request(s) queued` : "";
  return `waiting for ${fmtBytes(want)} of transfer budget: ${fmtBytes(a.inFlight)} of ${fmtBytes(total)}` +
    ` in flight by ${a.holders} process(es)${others}`;
}

/** Is the process that wrote this row (pid + start time) still there? Ours always is. */
export function probeHolder(r: Pick<LeaseRow, "pid" | "start_time">): boolean {
  if (r.pid === process.pid && r.start_time === selfStart()) return true;
  const exists = isAlive(r.pid);
  const startTime = exists ? readStartTime(r.pid) : undefined;
  const state = exists ? readProcStatus(r.pid)?.state : undefined;
  return !holderGone(r.start_time, {
    exists,
    ...(startTime !== undefined ? { startTime } : {}),
    ...(state !== undefined ? { state } : {}),
  });
}

let ownStart: number | undefined;
export const selfStart = (): number => (ownStart ??= readStartTime(process.pid) ?? 0);

export interface Lease extends Disposable {
  readonly id: number;
  /** Bytes counted against the budget (the request, clamped to the total). */
  readonly bytes: number;
  /** Bytes in flight on the host when granted, this lease included. */
  readonly inFlightAtGrant: number;
  /** Returns the bytes to the budget; idempotent. Synchronous so it works in exit handlers. */
  release(): void;
}

export interface AcquireOptions {
  /** Called once if the wait passes `reportAfterMs` (1 s), with what the wait is for. */
  onWait?: (msg: string) => void;
  signal?: AbortSignal;
  reportAfterMs?: number;
}

export interface BudgetOptions {
  /** The total; default defaultTotal(MemTotal). */
  totalBytes?: number;
  /** Longest pause between two looks at the budget while waiting. */
  maxPollMs?: number;
}

const Q_ROWS = "SELECT id, pid, start_time, bytes, waiting FROM leases ORDER BY id";

export class Budget {
  readonly totalBytes: number;
  private readonly maxPollMs: number;

  constructor(
    private readonly s: StateDb,
    o: BudgetOptions = {},
  ) {
    this.totalBytes = Math.max(1, Math.floor(o.totalBytes ?? defaultTotal(parseMemTotal(readMeminfo()))));
    this.maxPollMs = o.maxPollMs ?? 100;
  }

  /** What the budget looks like now (dead holders not counted). */
  async usage(): Promise<Assessment> {
    const rows = await this.s.read("reading the transfer budget", (db) => db.query(Q_ROWS).all() as LeaseRow[]);
    return assess(rows, undefined, 0, this.totalBytes, probeHolder);
  }

  /**
   * Waits until `bytes` (clamped to the total) fit in the budget, then holds them until release().
   * A process that already holds leases must not ask for more than the rest of the total: its own
   * live leases would keep it waiting forever, as with Hydra's token server.
   */
  async acquire(bytes: number, o: AcquireOptions = {}): Promise<Lease> {
    const want = clampRequest(bytes, this.totalBytes);
    if (want === 0) return this.lease(0, 0, 0);
    const t0 = Date.now();
    // One transaction: reap the dead, then take the lease or join the queue.
    let st = await this.s.write("taking a transfer budget lease", (db) => this.tryGrant(db, undefined, want));
    let mine = st.id;
    let reported = false;
    try {
      for (let n = 1; !st.granted; n++) {
        o.signal?.throwIfAborted();
        if (!reported && Date.now() - t0 >= (o.reportAfterMs ?? 1000)) {
          reported = true;
          o.onWait?.(waitMessage(want, st.a, this.totalBytes));
        }
        // Poll, no busy spin: 2.5 ms at first, growing to at most maxPollMs.
        await Bun.sleep(jitteredDelay(n, 5, this.maxPollMs, Math.random()));
        // Look without the write lock first: most looks find nothing changed.
        const rows = await this.s.read("reading the transfer budget", (db) => db.query(Q_ROWS).all() as LeaseRow[]);
        const a = assess(rows, mine, want, this.totalBytes, probeHolder);
        if (!a.admit && a.dead.length === 0 && rows.some((r) => r.id === mine)) {
          st = { granted: false, id: mine, a };
          continue;
        }
        st = await this.s.write("taking a transfer budget lease", (db) => this.tryGrant(db, mine, want));
        mine = st.id;
      }
    } catch (e) {
      this.drop(mine);
      throw e;
    }
    return this.lease(mine, want, st.a.inFlight + want);
  }

  /** Inside a write transaction: reap dead holders, then grant row `mine` (or a new one) if it fits. */
  private tryGrant(
    db: StateDb["db"],
    mine: number | undefined,
    want: number,
  ): { granted: boolean; id: number; a: Assessment } {
    const rows = db.query(Q_ROWS).all() as LeaseRow[];
    // Our queued row reaped by someone who wrongly took us for dead: queue again.
    if (mine !== undefined && !rows.some((r) => r.id === mine)) mine = undefined;
    const a = assess(rows, mine, want, this.totalBytes, probeHolder);
    for (const id of a.dead) db.query("DELETE FROM leases WHERE id = ?1").run(id);
    if (mine !== undefined) {
      if (a.admit) db.query("UPDATE leases SET waiting = 0, since = ?2 WHERE id = ?1").run(mine, Date.now());
      return { granted: a.admit, id: mine, a };
    }
    const id = Number(
      db.query("INSERT INTO leases (pid, start_time, bytes, waiting, since) VALUES (?1, ?2, ?3, ?4, ?5)")
        .run(process.pid, selfStart(), want, a.admit ? 0 : 1, Date.now()).lastInsertRowid,
    );
    return { granted: a.admit, id, a };
  }

  private drop(id: number): void {
    try {
      this.s.writeSync("returning a transfer budget lease", (db) =>
        db.query("DELETE FROM leases WHERE id = ?1").run(id));
    } catch {
      // Leaked only until this process exits: then the row is a dead holder's.
    }
  }

  private lease(id: number, bytes: number, inFlightAtGrant: number): Lease {
    let held = bytes > 0;
    const release = () => {
      if (!held) return;
      held = false;
      this.drop(id);
    };
    return { id, bytes, inFlightAtGrant, release, [Symbol.dispose]: release };
  }
}

function readMeminfo(): string {
  try {
    return fs.readFileSync("/proc/meminfo", "utf8");
  } catch {
    return "";
  }
}
