// A token bucket shared by every nsh process on the machine (one row per scheduler endpoint in the
// state database), so that together they stay under the rate the site allows: Slurm's own per-user
// limit (SlurmctldParameters=rl_enable) is a bucket of 30 refilled by 2 per second, and a user past
// it gets "Rate limit exceeded, please retry momentarily" for every RPC.
//
// A take is a reservation: the bucket may go below zero, and the taker sleeps until its token
// would have been refilled. So one write transaction and one sleep per take (no polling), callers
// are served in the order they asked, and the tokens granted by time t never exceed
// burst + rate·t, however many processes take at once.
import type { Database } from "bun:sqlite";
import type { StateDb } from "./db.ts";

export interface RatePolicy {
  /** tokens the bucket holds when full: requests that may go at once after a quiet spell */
  burst: number;
  /** tokens refilled per second: the sustained rate */
  perSecond: number;
}

/** nsh's default for all its requests together, below Slurm's own rl_enable defaults (bucket 30, refill 2 per second). */
export const DEFAULT_RATE: RatePolicy = { burst: 28, perSecond: 1.8 };

/** The share of the site's rate that job-state queries and cancels get; submits get the rest. */
export const QUERY_SHARE = 0.45;

export interface RateBudgets {
  /** job submits: bursty (a wide build submits many at once) */
  submit: RatePolicy;
  /** the broker's one batched query per tick for all jobs, cancels, tag look-ups */
  query: RatePolicy;
}

/**
 * Pure: the site's rate split into two buckets whose sum is the whole, so that a wide build's
 * submits never starve the job-state queries every build waits on, nor the other way round.
 * Each bucket holds at least one token.
 */
export function splitRate(total: RatePolicy, queryShare = QUERY_SHARE): RateBudgets {
  const queryBurst = Math.min(Math.max(1, Math.round(total.burst * queryShare)), Math.max(1, total.burst - 1));
  const submitBurst = Math.max(1, total.burst - queryBurst);
  const queryRate = total.perSecond * queryShare;
  return {
    submit: { burst: submitBurst, perSecond: total.perSecond - queryRate },
    query: { burst: queryBurst, perSecond: queryRate },
  };
}

export interface BucketState {
  tokens: number;
  /** ms since the epoch of the last refill */
  updatedAt: number;
}

/** Pure: the bucket refilled up to `now`; a clock that went backwards refills nothing. */
export function refill(b: BucketState, now: number, p: RatePolicy): BucketState {
  const elapsed = Math.max(0, now - b.updatedAt);
  return { tokens: Math.min(p.burst, b.tokens + (elapsed / 1000) * p.perSecond), updatedAt: Math.max(now, b.updatedAt) };
}

export interface Reservation {
  /** the bucket after the take (tokens may be negative: owed to earlier reservations) */
  next: BucketState;
  /** how long the taker waits before its request may go; 0: at once */
  waitMs: number;
}

/**
 * Pure: reserve `cost` tokens at `now`. A missing bucket starts full. When the wait would exceed
 * `maxWaitMs` nothing is reserved (next is the refilled bucket) and waitMs says how long it would be.
 */
export function reserve(
  b: BucketState | undefined,
  now: number,
  cost: number,
  p: RatePolicy,
  maxWaitMs = Infinity,
): Reservation & { granted: boolean } {
  const full = refill(b ?? { tokens: p.burst, updatedAt: now }, now, p);
  const left = full.tokens - cost;
  const waitMs = left >= 0 ? 0 : Math.ceil((-left / p.perSecond) * 1000);
  if (waitMs > maxWaitMs) return { next: full, waitMs, granted: false };
  return { next: { tokens: left, updatedAt: full.updatedAt }, waitMs, granted: true };
}

/**
 * Pure: a take from a sibling bucket's surplus (its tokens above `keep`, e.g. half its burst), for a
 * request whose own bucket would make it wait: the sibling after the take, or null when it has no
 * surplus. The sum of both buckets still bounds the two together.
 */
export function borrow(
  sibling: BucketState | undefined,
  now: number,
  cost: number,
  p: RatePolicy,
  keep: number,
): BucketState | null {
  const full = refill(sibling ?? { tokens: p.burst, updatedAt: now }, now, p);
  return full.tokens - cost >= keep ? { tokens: full.tokens - cost, updatedAt: full.updatedAt } : null;
}

/**
 * Pure: the whole tokens takes could spend now without waiting: its own bucket refilled (a missing
 * one is full), plus the sibling's surplus above its `keep`. Never negative.
 */
export function spendable(
  own: BucketState | undefined,
  p: RatePolicy,
  now: number,
  sibling?: { bucket: BucketState | undefined; policy: RatePolicy; keep: number },
): number {
  const full = (b: BucketState | undefined, q: RatePolicy) => refill(b ?? { tokens: q.burst, updatedAt: now }, now, q).tokens;
  const mine = full(own, p);
  const lent = sibling ? full(sibling.bucket, sibling.policy) - sibling.keep : 0;
  // Whole tokens: a take with half a token left waits, and a loan needs a whole one above `keep`.
  return Math.floor(Math.max(0, mine)) + Math.floor(Math.max(0, lent));
}

/** Pure: "BURST PER-SECOND" (e.g. "28 1.8"), or "0"/"off" for no limit. */
export function parseRate(text: string): { ok: true; rate: RatePolicy | null } | { ok: false; error: string } {
  const t = text.trim();
  if (t === "0" || t === "off" || t === "none") return { ok: true, rate: null };
  const m = /^(\d+)\s+(\d+(?:\.\d+)?|\.\d+)$/.exec(t);
  const burst = m ? Number(m[1]) : NaN;
  const perSecond = m ? Number(m[2]) : NaN;
  if (!m || burst < 1 || !(perSecond > 0)) {
    return { ok: false, error: `expects BURST PER-SECOND (e.g. "28 1.8": 28 requests at once, then 1.8 per second) or "off", got '${text}'` };
  }
  return { ok: true, rate: { burst, perSecond } };
}

export class RateLimitWaitTooLong extends Error {
  constructor(
    readonly key: string,
    readonly waitMs: number,
  ) {
    super(`scheduler rate limit for ${key}: the next request could go only in ${Math.round(waitMs / 1000)} s; giving up`);
  }
}

export interface TakeOptions {
  /** tokens this request costs (a per-job fallback costs one per job) */
  cost?: number;
  signal?: AbortSignal;
  /** told once when the take must wait longer than reportAfterMs (1 s) */
  onWait?: (msg: string) => void;
  reportAfterMs?: number;
  /** this take waits at most this long (0: only a token spendable now); else RateLimitWaitTooLong, nothing taken */
  maxWaitMs?: number;
}

/** A bucket whose surplus above `keep` tokens a RateLimiter may take when its own would make it wait. */
export interface Sibling {
  key: string;
  policy: RatePolicy;
  keep: number;
}

function bucketOf(db: Database, key: string): BucketState | undefined {
  const row = db.query("SELECT tokens, updated_at FROM rate_buckets WHERE key = ?1").get(key) as
    | { tokens: number; updated_at: number }
    | null;
  return row ? { tokens: row.tokens, updatedAt: row.updated_at } : undefined;
}

export class RateLimiter {
  /** the longest a take may wait; a longer one fails without reserving (RateLimitWaitTooLong) */
  readonly maxWaitMs: number;

  constructor(
    private readonly s: StateDb,
    readonly key: string,
    readonly policy: RatePolicy,
    o: { maxWaitMs?: number; now?: () => number; sibling?: Sibling } = {},
  ) {
    this.maxWaitMs = o.maxWaitMs ?? 30 * 60_000;
    this.now = o.now ?? Date.now;
    this.sibling = o.sibling;
  }
  private readonly now: () => number;
  private readonly sibling: Sibling | undefined;

  /** The tokens a take could spend now without waiting (spendable): a read, no lock taken. */
  async available(): Promise<number> {
    const rows = await this.s.read("reading the scheduler rate budget", (db) => ({
      own: bucketOf(db, this.key),
      sibling: this.sibling ? bucketOf(db, this.sibling.key) : undefined,
    }));
    const sib = this.sibling && { bucket: rows.sibling, policy: this.sibling.policy, keep: this.sibling.keep };
    return spendable(rows.own, this.policy, this.now(), sib);
  }

  /** Waits until a request of `kind` ("submit", "query", "cancel") may go; resolves with the ms waited. */
  async take(kind: string, o: TakeOptions = {}): Promise<number> {
    o.signal?.throwIfAborted();
    const cost = Math.min(o.cost ?? 1, this.policy.burst);
    const r = await this.s.write(`taking a scheduler rate token (${kind})`, (db) => {
      const get = (key: string) => bucketOf(db, key);
      const put = (key: string, b: BucketState) =>
        db.query("INSERT INTO rate_buckets (key, tokens, updated_at) VALUES (?1, ?2, ?3) ON CONFLICT (key) DO UPDATE SET tokens = ?2, updated_at = ?3")
          .run(key, b.tokens, b.updatedAt);
      const now = this.now();
      const res = reserve(get(this.key), now, cost, this.policy, Math.min(o.maxWaitMs ?? Infinity, this.maxWaitMs));
      if (res.waitMs > 0 && this.sibling) {
        const { key, policy, keep } = this.sibling;
        const lent = borrow(get(key), now, cost, policy, keep);
        if (lent) {
          put(key, lent);
          return { granted: true, waitMs: 0, next: res.next };
        }
      }
      if (res.granted) put(this.key, res.next);
      return res;
    });
    if (!r.granted) throw new RateLimitWaitTooLong(this.key, r.waitMs);
    if (r.waitMs === 0) return 0;
    if (r.waitMs >= (o.reportAfterMs ?? 1000)) {
      const { burst, perSecond } = this.policy;
      const secs = (r.waitMs / 1000).toFixed(1);
      o.onWait?.(`waiting ${secs} s for the scheduler rate limit (${burst} at once, ${perSecond}/s for all nsh processes here) before a ${kind}`);
    }
    await sleep(r.waitMs, o.signal);
    return r.waitMs;
  }
}

/** Bun.sleep that an AbortSignal ends early (with its reason). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (!signal) return Bun.sleep(ms);
  signal.throwIfAborted();
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    const t = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
