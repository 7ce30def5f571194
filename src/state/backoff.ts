// Pure retry timing for the state database and the budget's polling: exponential backoff with
// jitter, bounded in attempts and in total time. No clocks or randomness here: callers pass them.

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  maxAttempts: number;
  /** No retry starts later than this after the first attempt began. */
  maxTotalMs: number;
  /** The first delay before jitter; each later one doubles. */
  baseMs: number;
  /** No single delay is longer than this. */
  capMs: number;
}

// SQLite's own busy handler (busy_timeout) absorbs short waits first; these retries cover what it
// cannot (SQLITE_BUSY_SNAPSHOT, SQLITE_PROTOCOL, a holder paged out for seconds on a loaded host).
// 30 s: far beyond any transaction of ours (milliseconds), short enough that a wedged holder ends
// in an error naming the file instead of a hang.
export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 40, maxTotalMs: 30_000, baseMs: 2, capMs: 1000 };

/**
 * The delay before try number `attempt + 1` after try number `attempt` (1-based) failed. "Equal
 * jitter": half the exponential step is fixed so delays still grow, half is random so processes
 * that collided once spread out instead of colliding again. `rand` is in [0, 1).
 */
export function jitteredDelay(attempt: number, baseMs: number, capMs: number, rand: number): number {
  const step = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return step / 2 + (rand * step) / 2;
}

/**
 * Whether to retry after try number `attempt` failed `elapsedMs` after the first began, and after
 * how long: undefined means give up. The last delay is cut short to end at the deadline, so the
 * final try still happens within maxTotalMs.
 */
export function nextRetryDelay(attempt: number, elapsedMs: number, p: RetryPolicy, rand: number): number | undefined {
  if (attempt >= p.maxAttempts) return undefined;
  const remaining = p.maxTotalMs - elapsedMs;
  if (remaining <= 0) return undefined;
  return Math.min(remaining, jitteredDelay(attempt, p.baseMs, p.capMs, rand));
}

/** The whole schedule if every try failed at once (tries taking no time): for tests and docs. */
export function backoffSchedule(p: RetryPolicy, rand: (i: number) => number): number[] {
  const out: number[] = [];
  let elapsed = 0;
  for (let attempt = 1; ; attempt++) {
    const d = nextRetryDelay(attempt, elapsed, p, rand(attempt));
    if (d === undefined) return out;
    out.push(d);
    elapsed += d;
  }
}
