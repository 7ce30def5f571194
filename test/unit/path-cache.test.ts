// Expected: cache entries count as fresh within the TTL (and not when stamped in the future, i.e.
// after the clock went back); pruning starts over the size bound and goes down to 90% of it, and
// the row count is checked only every twentieth of the bound inserted.
import { describe, expect, test } from "bun:test";
import { DEFAULT_PATH_CACHE, freshWindow, isFresh, pruneCount, pruneDue } from "../../src/state/path-cache.ts";

const H = 3600_000;

describe("isFresh", () => {
  test.each([
    // checkedAt, now, ttl, fresh
    [1000 * H, 1000 * H, H, true],
    [1000 * H - H, 1000 * H, H, true], // exactly at the TTL
    [1000 * H - H - 1, 1000 * H, H, false],
    [0, 1000 * H, H, false],
    [1000 * H + 30_000, 1000 * H, H, true], // small clock differences tolerated
    [1000 * H + 2 * H, 1000 * H, H, false], // from the future: the clock went back
  ] as const)("checked %d at now %d ttl %d → %p", (checkedAt, now, ttl, want) => {
    expect(isFresh(checkedAt, now, ttl)).toBe(want);
  });
  test("window", () => expect(freshWindow(10 * H, H)).toEqual([9 * H, 10 * H + 60_000]));
});

describe("pruneCount", () => {
  test.each([
    [0, 100, 0],
    [100, 100, 0],
    [101, 100, 11], // down to 90
    [250, 100, 160],
    [200_001, 200_000, 20_001],
  ] as const)("%d stored, max %d → delete %d", (count, max, want) => {
    expect(pruneCount(count, max)).toBe(want);
  });
});

describe("pruneDue", () => {
  test.each([
    [0, 200_000, false],
    [9_999, 200_000, false],
    [10_000, 200_000, true],
    [1, 10, true], // tiny bounds: every insert
    [0, 10, false],
    [Number.MAX_SAFE_INTEGER, 200_000, true], // a new process prunes after its first batch
  ] as const)("%d inserted, max %d → %p", (n, max, want) => {
    expect(pruneDue(n, max)).toBe(want);
  });
});

test("defaults: one hour, 200k entries", () => {
  expect(DEFAULT_PATH_CACHE).toEqual({ ttlMs: H, maxEntries: 200_000 });
});
