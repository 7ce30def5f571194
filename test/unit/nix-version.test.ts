import { expect, test } from "bun:test";
import { hookFailureStatus, importMethod, knowsExternalBuilders, parseNixVersion } from "../../src/nix/version.ts";

test.each([
  ["nix-store (Nix) 2.8.0", "nix", 2, 8, "held-locks"],
  ["nix (Nix) 2.28.4", "nix", 2, 28, "held-locks"],
  ["nix (Nix) 2.29.0", "nix", 2, 29, "restore-register"],
  ["nix (Nix) 2.35.2pre20260801_88b09c6", "nix", 2, 35, "restore-register"],
  ["nix (Lix, like Nix) 2.93.3", "lix", 2, 93, "held-locks"],
  ["nix-store (Nix) 3.0", "nix", 3, 0, "restore-register"],
] as const)("%p", (line, impl, major, minor, method) => {
  const v = parseNixVersion(line);
  expect([v.impl, v.major, v.minor]).toEqual([impl, major, minor]);
  expect(importMethod(v)).toBe(method);
});

test("nonsense names what it got", () => expect(() => parseNixVersion("bash: nix: command not found")).toThrow(/cannot tell the Nix version from 'bash: nix: command not found'/));

// What Nix makes of the hook's exit status (nix-protocols.md §1.5): ≤ 2.28 and Lix map 100 to a
// permanent failure and 101 to TimedOut; ≥ 2.29 makes every non-zero status MiscFailure.
test.each([
  ["nix-store (Nix) 2.8.0", 100, 101, 1],
  ["nix (Nix) 2.18.9", 100, 101, 1],
  ["nix (Nix) 2.28.4", 100, 101, 1],
  ["nix (Nix) 2.29.0", 1, 1, 1],
  ["nix (Nix) 2.35.2", 1, 1, 1],
  ["nix (Lix, like Nix) 2.93.3", 100, 101, 1],
  ["nix (Lix, like Nix) 2.95.3", 100, 101, 1],
  [undefined, 100, 101, 1],
] as const)("hook exit status on %p: permanent %p, timed out %p, other %p", (line, permanent, timedOut, other) => {
  const v = line ? parseNixVersion(line) : undefined;
  expect([hookFailureStatus(v, "permanent"), hookFailureStatus(v, "timed-out"), hookFailureStatus(v, "other")]).toEqual([permanent, timedOut, other]);
});

// The job's node Nix gets `external-builders = []` only where the setting exists (older Nix would warn).
test.each([
  ["nix-store (Nix) 2.8.0", false],
  ["nix (Nix) 2.26.3", false],
  ["nix (Nix) 2.31.2", false],
  ["nix (Nix) 2.32.0", true],
  ["nix-store (Nix) 2.34.8", true],
  ["nix (Lix, like Nix) 2.93.3", false],
] as const)("external-builders known to %p: %p", (line, known) => {
  expect(knowsExternalBuilders(parseNixVersion(line))).toBe(known);
});
