// Expected: the hook's answer for a build it would take, from this machine's queued nsh jobs and
// max-queued-jobs: accept below the cap or with no cap (0), postpone at or above it; and which of
// the polite scheduler's lines a user hears (waits and refusals) rather than only a debug log.
import { describe, expect, test } from "bun:test";
import { admission } from "../../src/hook/queue-cap.ts";
import { isNotice } from "../../src/schedulers/polite-open.ts";

describe("admission", () => {
  test.each([
    [0, 0, "accept"],
    [50, 0, "accept"],
    [1, 2, "accept"],
    [2, 2, "postpone"],
    [3, 2, "postpone"],
  ] as const)("%i queued, max-queued-jobs %i: %s", (queued, cap, want) => expect(admission(queued, cap)).toBe(want));
});

describe("isNotice", () => {
  test.each([
    ["waiting 2.0 s for the scheduler rate limit (28 at once, 1.8/s for all nsh processes here) before a submit", true],
    ["waiting to submit: 2 of this machine's nsh jobs are queued (max-queued-jobs = 2)", true],
    ["the scheduler refused the submit for now (rate-limit: …); trying again in 1.2 s", true],
    ["this process (123) now asks the scheduler for all of this machine's jobs", false],
  ] as const)("%s", (line, want) => expect(isNotice(line)).toBe(want));
});
