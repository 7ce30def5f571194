// Expected: the shared token bucket's arithmetic. A bucket refills at its rate up to its burst and
// never refills for a clock that went backwards; a take reserves (the bucket may go below zero) and
// says how long to wait for the token; a take whose wait would pass the bound reserves nothing.
// The site's rate is split into a submit and a query bucket that sum to it, and a take may use the
// other bucket's surplus above its keep instead of waiting.
import { describe, expect, test } from "bun:test";
import { borrow, DEFAULT_RATE, parseRate, refill, reserve, spendable, splitRate } from "../../src/state/rate-limit.ts";

const P = { burst: 30, perSecond: 2 };

describe("refill", () => {
  test.each([
    ["no time passed", { tokens: 5, updatedAt: 1000 }, 1000, 5, 1000],
    ["one second: +2", { tokens: 5, updatedAt: 1000 }, 2000, 7, 2000],
    ["half a second: +1", { tokens: 0, updatedAt: 0 }, 500, 1, 500],
    ["capped at the burst", { tokens: 29, updatedAt: 0 }, 60_000, 30, 60_000],
    ["owed tokens are paid back first", { tokens: -3, updatedAt: 0 }, 1000, -1, 1000],
    ["clock went backwards: nothing refilled, time kept", { tokens: 4, updatedAt: 5000 }, 3000, 4, 5000],
  ])("%s", (_l, b, now, tokens, updatedAt) => {
    expect(refill(b, now, P)).toEqual({ tokens, updatedAt });
  });
});

describe("reserve", () => {
  test.each([
    ["a missing bucket starts full", undefined, 0, 1, 29, 0, true],
    ["a token there: no wait", { tokens: 1, updatedAt: 0 }, 0, 1, 0, 0, true],
    ["empty: wait for one refill (500 ms at 2/s)", { tokens: 0, updatedAt: 0 }, 0, 1, -1, 500, true],
    ["three owed before us: wait 2 s", { tokens: -3, updatedAt: 0 }, 0, 1, -4, 2000, true],
    ["cost 4 with 1 there: wait 1.5 s", { tokens: 1, updatedAt: 0 }, 0, 4, -3, 1500, true],
    ["the refill since the last take counts", { tokens: -1, updatedAt: 0 }, 1000, 1, 0, 0, true],
  ])("%s", (_l, b, now, cost, tokens, waitMs, granted) => {
    const r = reserve(b, now, cost, P);
    expect(r).toEqual({ next: { tokens, updatedAt: Math.max(now, b?.updatedAt ?? now) }, waitMs, granted });
  });

  test("a wait over the bound reserves nothing", () => {
    const r = reserve({ tokens: -100, updatedAt: 0 }, 0, 1, P, 10_000);
    expect(r.granted).toBe(false);
    expect(r.waitMs).toBe(50_500);
    expect(r.next.tokens).toBe(-100);
  });

  test("many takes at one instant: grants by time t never exceed burst + rate·t", () => {
    let b: { tokens: number; updatedAt: number } | undefined;
    const starts: number[] = [];
    for (let i = 0; i < 200; i++) {
      const r = reserve(b, 0, 1, P);
      b = r.next;
      starts.push(r.waitMs);
    }
    for (const t of [0, 1000, 10_000, 50_000, 85_000]) {
      expect(starts.filter((s) => s <= t).length).toBeLessThanOrEqual(P.burst + (P.perSecond * t) / 1000);
    }
    expect(Math.max(...starts)).toBe(85_000); // (200 - 30) / 2 s
  });
});

describe("parseRate", () => {
  test.each([
    ["28 1.8", { burst: 28, perSecond: 1.8 }],
    ["30 2", { burst: 30, perSecond: 2 }],
    ["  10   .5 ", { burst: 10, perSecond: 0.5 }],
    ["off", null],
    ["0", null],
  ])("%p", (text, rate) => expect(parseRate(text)).toEqual({ ok: true, rate }));

  test.each(["", "30", "30 0", "0 2", "-1 2", "30 2 3", "a b", "30 2/s"])("%p is refused with the expected form", (text) => {
    const r = parseRate(text);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toContain("BURST PER-SECOND");
  });
});

describe("splitRate: submits and queries get separate buckets that sum to the site's rate", () => {
  test.each([
    // total             submit                         query
    [{ burst: 28, perSecond: 1.8 }, { burst: 15, perSecond: 0.99 }, { burst: 13, perSecond: 0.81 }],
    [{ burst: 30, perSecond: 2 }, { burst: 16, perSecond: 1.1 }, { burst: 14, perSecond: 0.9 }],
    [{ burst: 2, perSecond: 1 }, { burst: 1, perSecond: 0.55 }, { burst: 1, perSecond: 0.45 }],
    // A bucket of one: each budget still holds one token.
    [{ burst: 1, perSecond: 0.5 }, { burst: 1, perSecond: 0.275 }, { burst: 1, perSecond: 0.225 }],
  ] as const)("%o", (total, submit, query) => {
    const b = splitRate(total);
    expect(b.submit.burst).toBe(submit.burst);
    expect(b.query.burst).toBe(query.burst);
    expect(b.submit.perSecond).toBeCloseTo(submit.perSecond, 6);
    expect(b.query.perSecond).toBeCloseTo(query.perSecond, 6);
    expect(b.submit.perSecond + b.query.perSecond).toBeCloseTo(total.perSecond, 6);
  });
  test("the default stays below Slurm's own per-user limit (30 at once, 2/s)", () => {
    const b = splitRate(DEFAULT_RATE);
    expect(b.submit.burst + b.query.burst).toBeLessThan(30);
    expect(b.submit.perSecond + b.query.perSecond).toBeLessThan(2);
  });
});

describe("borrow: a take from the sibling bucket's surplus", () => {
  const p = { burst: 10, perSecond: 1 };
  test.each([
    ["a full sibling lends", { tokens: 10, updatedAt: 0 }, 0, 5, 9],
    ["down to its keep", { tokens: 6, updatedAt: 0 }, 0, 5, 5],
    ["not below its keep", { tokens: 5.5, updatedAt: 0 }, 0, 5, null],
    ["refilled first", { tokens: 0, updatedAt: 0 }, 8000, 5, 7],
    ["a sibling never used starts full", undefined, 0, 5, 9],
  ] as const)("%s", (_l, sibling, now, keep, left) => {
    const r = borrow(sibling, now, 1, p, keep);
    expect(r === null ? null : r.tokens).toBe(left);
  });
});

describe("spendable: what a take could use now without waiting (the broker paces its polls by it)", () => {
  const own = { burst: 13, perSecond: 1 };
  const sib = { policy: { burst: 15, perSecond: 1 }, keep: 7.5 };
  test.each([
    ["buckets never used are full: all of its own and the sibling's whole tokens above its keep", undefined, undefined, 0, 20],
    ["refilled up to now", { tokens: 2, updatedAt: 0 }, { tokens: 0, updatedAt: 0 }, 3000, 5],
    ["plus the sibling's whole tokens above its keep", { tokens: 2, updatedAt: 0 }, { tokens: 10, updatedAt: 0 }, 0, 4],
    ["half a token is none", { tokens: 1.5, updatedAt: 0 }, { tokens: 8, updatedAt: 0 }, 0, 1],
    ["a bucket in debt counts as empty", { tokens: -3, updatedAt: 0 }, { tokens: 7, updatedAt: 0 }, 0, 0],
  ] as const)("%s", (_l, mine, sibling, now, want) => {
    expect(spendable(mine, own, now, { bucket: sibling, ...sib })).toBeCloseTo(want, 6);
  });
  test("without a sibling: its own tokens only", () => expect(spendable({ tokens: 4, updatedAt: 0 }, own, 0)).toBe(4));
});
