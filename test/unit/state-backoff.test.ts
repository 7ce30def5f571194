// Expected: retry delays grow exponentially with jitter, never exceed the cap, and stop at the
// attempt bound or the time bound, whichever comes first; the last delay ends at the deadline.
import { describe, expect, test } from "bun:test";
import { backoffSchedule, DEFAULT_RETRY, jitteredDelay, nextRetryDelay, type RetryPolicy } from "../../src/state/backoff.ts";

const p = (o: Partial<RetryPolicy>): RetryPolicy => ({ maxAttempts: 10, maxTotalMs: 10_000, baseMs: 10, capMs: 1000, ...o });

describe("jitteredDelay: half fixed, half random", () => {
  test.each([
    // attempt, base, cap, rand, expected
    [1, 10, 1000, 0, 5],
    [1, 10, 1000, 0.999999, 10],
    [2, 10, 1000, 0, 10],
    [3, 10, 1000, 0.5, 30], // step 40: 20 + 10
    [7, 10, 1000, 0, 320], // step 640
    [8, 10, 1000, 0, 500], // step 1280 capped at 1000
    [50, 10, 1000, 0.999999, 1000],
    [0, 10, 1000, 0, 5], // attempt 0 treated as 1
  ] as const)("attempt %d base %d cap %d rand %d → %d", (attempt, base, cap, rand, want) => {
    expect(jitteredDelay(attempt, base, cap, rand)).toBeCloseTo(want, 3);
  });
});

describe("nextRetryDelay", () => {
  test.each([
    // attempt, elapsed, policy, rand, expected
    [1, 0, p({}), 0, 5],
    [9, 0, p({}), 0, 1000 / 2], // step 2560 capped
    [10, 0, p({}), 0, undefined], // 10 attempts made: no 11th
    [3, 10_000, p({}), 0, undefined], // deadline reached
    [3, 12_000, p({}), 0, undefined],
    [8, 9_900, p({}), 0, 100], // 500 cut to the 100 ms left
    [1, 0, p({ maxAttempts: 1 }), 0, undefined], // one attempt: never retry
    [1, 0, p({ maxTotalMs: 0 }), 0, undefined],
  ] as const)("attempt %d at %d ms → %p", (attempt, elapsed, policy, rand, want) => {
    expect(nextRetryDelay(attempt, elapsed, policy, rand)).toEqual(want);
  });
});

describe("backoffSchedule", () => {
  test("lowest jitter: doubling, capped, attempt-bounded", () => {
    expect(backoffSchedule(p({ maxAttempts: 9 }), () => 0)).toEqual([5, 10, 20, 40, 80, 160, 320, 500]);
  });
  test("highest jitter: doubling, capped", () => {
    const s = backoffSchedule(p({ maxAttempts: 9 }), () => 0.999999).map(Math.round);
    expect(s).toEqual([10, 20, 40, 80, 160, 320, 640, 1000]);
  });
  test("time-bounded: total sleeping never passes maxTotalMs, the last delay is cut", () => {
    const s = backoffSchedule(p({ maxAttempts: 1000, maxTotalMs: 3000 }), () => 0.999999);
    expect(s.reduce((a, b) => a + b, 0)).toBeCloseTo(3000, 3);
    expect(s.at(-1)!).toBeLessThan(1000);
    expect(Math.max(...s)).toBeLessThanOrEqual(1000);
  });
  test("defaults: bounded by 30 s in all, no delay over 1 s, first delays of a few ms", () => {
    for (const r of [0, 0.5, 0.999999]) {
      const s = backoffSchedule(DEFAULT_RETRY, () => r);
      expect(s.length).toBeLessThan(DEFAULT_RETRY.maxAttempts);
      expect(s.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(DEFAULT_RETRY.maxTotalMs + 1e-6);
      expect(Math.max(...s)).toBeLessThanOrEqual(DEFAULT_RETRY.capMs);
      expect(s[0]!).toBeLessThanOrEqual(2);
    }
  });
  test("jitter spreads processes that collided: different rands give different delays", () => {
    const a = backoffSchedule(p({}), () => 0.1);
    const b = backoffSchedule(p({}), () => 0.9);
    expect(a.every((d, i) => d < b[i]!)).toBe(true);
  });
});
