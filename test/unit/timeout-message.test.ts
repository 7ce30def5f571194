// Expected: nsh's own line for a build that failed on the node says plainly when it timed out and
// which of Nix's limits it ran into (timeout or max-silent-time, with its value), and on Nix ≥ 2.29,
// where Nix itself only shows "builder failed with exit code 1", says that this is what Nix shows.
import { expect, test } from "bun:test";
import { failedBuildMessage } from "../../src/hook/job-end.ts";

const drv = "/nix/store/x-job.drv";
const limits = { buildTimeout: 5, maxSilentTime: 3 };

test.each([
  ["timeout, Nix 2.8 (exit 101)", "TimedOut", "building of '…' timed out after 5 seconds", 101, /^build of \/nix\/store\/x-job\.drv timed out: it ran into Nix's timeout of 5 s: building of '…' timed out after 5 seconds$/],
  ["timeout, Nix 2.34 (exit 1)", "TimedOut", "timed out after 5 seconds", 1, /timed out: it ran into Nix's timeout of 5 s \(Nix reports it as "builder failed with exit code 1"\): timed out after 5 seconds$/],
  ["max-silent-time", "TimedOut", "timed out after 3 seconds of silence", 1, /timed out: it ran into Nix's max-silent-time of 3 s without output/],
  ["max-silent-time, Nix 2.34's words", "TimedOut", "timed out after 3 seconds", 1, /timed out: it ran into Nix's max-silent-time of 3 s without output/],
  ["a failing builder", "PermanentFailure", "builder failed with exit code 2", 1, /^build of \/nix\/store\/x-job\.drv failed: PermanentFailure: builder failed with exit code 2$/],
] as const)("%s", (_what, status, msg, exit, want) => expect(failedBuildMessage(drv, status, msg, limits, exit)).toMatch(want));

test("no limit known: none named", () =>
  expect(failedBuildMessage(drv, "TimedOut", "timed out", { buildTimeout: 0, maxSilentTime: 0 }, 101)).toContain("ran into Nix's timeout: timed out"));
