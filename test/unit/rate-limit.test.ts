// Expected: the shared token bucket's arithmetic. A bucket refills at its rate up to its burst and
// never refills for a clock that went backwards; a take reserves (the bucket may go below zero) and
// says how long to wait for the token; a take whose wait would pass the bound reserves nothing.
import { describe, expect, test } from "bun:test";
import { parseRate, refill, reserve } from "../../src/state/rate-limit.ts";

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
    ["25 1.5", { burst: 25, perSecond: 1.5 }],
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
