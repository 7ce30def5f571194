// Expected: the broker's decisions. The lease stays with a live holder that renews and passes to
// the next process once the holder is dead or silent too long; a followed job is polled at once
// when new, every 100 ms while a start or end is likely soon, then every 0.5 s and 2 s; the queue
// cap lets a submit go below the cap only (0: no cap).
import { describe, expect, test } from "bun:test";
import { capDecision, jobPollDelay, leaseVerdict, nextPollAt, pollFloorMs, pollMaySpend } from "../../src/state/job-watch.ts";

const me = { pid: 10, start_time: 100 };
const alive = () => true;
const dead = () => false;

describe("leaseVerdict", () => {
  test.each([
    ["nobody leads", null, alive, "free"],
    ["we lead", { pid: 10, start_time: 100, renewed_at: 0 }, alive, "mine"],
    ["we lead even when our renewal is late", { pid: 10, start_time: 100, renewed_at: -60_000 }, alive, "mine"],
    ["another live, renewed process leads", { pid: 11, start_time: 5, renewed_at: 9000 }, alive, "held"],
    ["the holder is dead", { pid: 11, start_time: 5, renewed_at: 9000 }, dead, "free"],
    ["our pid reused by another start: not us; dead holder", { pid: 10, start_time: 99, renewed_at: 9000 }, dead, "free"],
    ["the holder stopped renewing 11 s ago", { pid: 11, start_time: 5, renewed_at: -1000 }, alive, "free"],
  ] as const)("%s", (_l, row, isAlive, want) => expect(leaseVerdict(row, me, 10_000, 10_000, isAlive)).toBe(want));
});

describe("jobPollDelay", () => {
  test.each([
    ["never polled", { followed_at: 0, changed_at: null, checked_at: null, state: null }, 0, 0],
    ["just followed", { followed_at: 0, changed_at: 0, checked_at: 0, state: null }, 1000, 100],
    ["pending a second", { followed_at: 0, changed_at: 0, checked_at: 900, state: "pending" }, 1000, 100],
    ["pending 3 s", { followed_at: 0, changed_at: 0, checked_at: 2900, state: "pending" }, 3000, 250],
    ["queued 10 s", { followed_at: 0, changed_at: 0, checked_at: 9900, state: "pending" }, 10_000, 500],
    ["queued 1 min", { followed_at: 0, changed_at: 0, checked_at: 59_000, state: "pending" }, 60_000, 2000],
    // A build learns its job's end from its agent: nobody waits on a running job's state.
    ["started a second ago after a long queue", { followed_at: 0, changed_at: 59_000, checked_at: 59_900, state: "running" }, 60_000, 5000],
    ["running 1 min", { followed_at: 0, changed_at: 0, checked_at: 59_000, state: "running" }, 60_000, 5000],
    // touch(): a cancel was sent, or a reader wants the state now.
    ["touched since the last poll", { followed_at: 0, changed_at: 59_950, checked_at: 59_900, state: "running" }, 60_000, 0],
    // A cancel was sent to a job still pending.
    ["pending, touched since the last poll", { followed_at: 0, changed_at: 59_950, checked_at: 59_900, state: "pending" }, 60_000, 0],
  ] as const)("%s", (_l, row, now, want) => expect(jobPollDelay(row, now)).toBe(want));

  test.each([
    ["a low budget stretches a young pending job's 100 ms", { followed_at: 0, changed_at: 0, checked_at: 900, state: "pending" }, 600],
    ["but not a long queue's 2 s", { followed_at: 0, changed_at: 0, checked_at: 59_000, state: "pending" }, 2000],
    ["nor a never polled job", { followed_at: 0, changed_at: null, checked_at: null, state: null }, 0],
    ["nor a touched one", { followed_at: 0, changed_at: 990, checked_at: 900, state: "pending" }, 0],
  ] as const)("floor 600 ms: %s", (_l, row, want) => expect(jobPollDelay(row, row.checked_at === 59_000 ? 60_000 : 1000, 600)).toBe(want));
});

describe("pollFloorMs", () => {
  const query = { burst: 13, perSecond: 0.81 };
  test("a small burst: a whole refill as soon as it is below half", () => {
    expect(pollFloorMs(1.5, { burst: 4, perSecond: 0.5 })).toBe(2000);
  });
  test.each([
    ["a full bucket", 13, 0],
    ["half of it", 6.5, 0],
    ["halfway between 2 and half the burst: half a refill", 4.25, 617],
    ["2 left (one kept for a start notice's poll): a whole refill (1 / 0.81 s)", 2, 1235],
    ["empty: a whole refill", 0, 1235],
    ["in debt: no longer than empty", -4, 1235],
  ] as const)("%s", (_l, tokens, want) => expect(pollFloorMs(tokens, query)).toBe(want));

  test("a chain of builds spends the budget evenly: the floor rises as tokens fall", () => {
    const floors = [6, 5, 4, 3, 2].map((t) => pollFloorMs(t, query));
    for (let i = 1; i < floors.length; i++) expect(floors[i]!).toBeGreaterThan(floors[i - 1]!);
  });
});

describe("nextPollAt", () => {
  const row = (o: Partial<{ followed_at: number; changed_at: number | null; checked_at: number | null; done: number }>) =>
    ({ followed_at: 0, changed_at: 0, checked_at: 0, done: 0, state: null, ...o });
  test("nothing to poll: undefined", () => expect(nextPollAt([row({ done: 1 })], 0, 100)).toBeUndefined());
  test("a new job: now", () => expect(nextPollAt([row({ checked_at: 59_000 }), row({ checked_at: null })], 59_000, 60_000)).toBe(60_000));
  test("the most urgent job sets the tick", () => {
    expect(nextPollAt([row({}), row({ changed_at: 59_000, checked_at: 59_000 })], 59_950, 60_000)).toBe(60_050);
  });
});

describe("capDecision", () => {
  test.each([
    [0, 0, "go"],
    [500, 0, "go"],
    [2, 3, "go"],
    [3, 3, "wait"],
    [4, 3, "wait"],
  ] as const)("%i queued, cap %i: %s", (queued, cap, want) => expect(capDecision(queued, cap)).toBe(want));
});

describe("pollMaySpend: a paced poll leaves a token for a start notice's", () => {
  const row = (o: Partial<{ changed_at: number | null; checked_at: number | null; done: number }>) =>
    ({ changed_at: 0, checked_at: 100, done: 0, ...o });
  test.each([
    ["two tokens: a paced poll may go", [row({})], 2, Infinity, true],
    ["fewer: it waits for the refill", [row({})], 1.9, Infinity, false],
    ["a job never polled goes anyway", [row({}), row({ checked_at: null })], 0.5, Infinity, true],
    ["a touched job goes anyway", [row({ changed_at: 150 })], 0.5, Infinity, true],
    ["a touched job that is done does not count", [row({ changed_at: 150, done: 1 })], 0.5, Infinity, false],
    ["a bucket of one: a poll goes when it is full", [row({})], 1, 1, true],
  ] as const)("%s", (_l, rows, tokens, burst, want) => expect(pollMaySpend(rows, tokens, burst)).toBe(want));
});
