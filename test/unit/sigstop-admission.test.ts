// Resume admission decisions (pure): a stopped nix resumes when its swapped pages have RAM to come
// back to and it has room to grow by the margin; without turn-taking only when memory is plentiful
// for every evaluation that may run soon; and when nothing fits, only the biggest waiter goes, only
// after nothing on the host has moved for 15 s (anyone after max-wait).
import { describe, expect, test } from "bun:test";
import { fits, forced, isBiggest, plentiful, type MemoryView } from "../../src/sigstop/admission.ts";

const p = { marginBytes: 100, maxWaitMs: 1000, fastPathBytes: 50 };
const view = (swapBytes: number, freeRamBytes: number, reclaimableBytes: number, commitBytes: number): MemoryView => ({ swapBytes, freeRamBytes, reclaimableBytes, commitBytes });

describe("fits", () => {
  test.each([
    ["RAM free for the swapped pages, room to grow", view(500, 600, 0, 100), true],
    ["RAM only after the stopped peers give theirs up", view(500, 100, 400, 100), true],
    ["not enough RAM even with the peers'", view(500, 100, 300, 1000), false],
    ["RAM fine, but no room to grow by the margin", view(500, 600, 0, 99), false],
    ["a big swap needs no room beyond the margin: swap-in only moves pages", view(5000, 0, 5000, 100), true],
  ] as const)("%s", (_n, m, want) => expect(fits(m, p)).toBe(want));
});

describe("plentiful (no turn-taking)", () => {
  test.each([
    ["little swap, room for us and two others", view(10, 10, 0, 300), 2, true],
    ["little swap, room for us but not for the others", view(10, 10, 0, 299), 2, false],
    ["too much in swap", view(50, 1000, 0, 1000), 0, false],
    ["swap must come back into free RAM, not reclaimed RAM", view(40, 39, 1000, 1000), 0, false],
  ] as const)("%s", (_n, m, others, want) => expect(plentiful(m, others, p)).toBe(want));
});

describe("forced", () => {
  const long = { ...p, maxWaitMs: 600000 };
  test.each([
    ["the biggest, nothing moved for 15 s", { waitedMs: 15000, sinceProgressMs: 15000, biggest: true }, long, true],
    ["the biggest, but a peer moved recently", { waitedMs: 30000, sinceProgressMs: 14999, biggest: true }, long, false],
    ["not the biggest, nothing moved", { waitedMs: 30000, sinceProgressMs: 30000, biggest: false }, long, false],
    ["not the biggest, but waited max-wait", { waitedMs: 600000, sinceProgressMs: 0, biggest: false }, long, true],
    ["a short max-wait shortens the stall to a quarter of it", { waitedMs: 250, sinceProgressMs: 250, biggest: true }, p, true],
  ] as const)("%s", (_n, s, pol, want) => expect(forced(s, pol)).toBe(want));
});

describe("isBiggest", () => {
  test.each([
    ["no other waiter", { pid: 5, bytes: 1 }, [], true],
    ["bigger than all", { pid: 5, bytes: 10 }, [{ pid: 1, bytes: 9 }, { pid: 2, bytes: 3 }], true],
    ["one is bigger", { pid: 5, bytes: 10 }, [{ pid: 1, bytes: 11 }], false],
    ["a tie goes to the lower pid", { pid: 5, bytes: 10 }, [{ pid: 7, bytes: 10 }], true],
    ["a tie lost to a lower pid", { pid: 5, bytes: 10 }, [{ pid: 3, bytes: 10 }], false],
  ] as const)("%s", (_n, self, others, want) => expect(isBiggest(self, [...others])).toBe(want));
});
