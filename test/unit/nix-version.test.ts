import { expect, test } from "bun:test";
import { importMethod, parseNixVersion } from "../../src/nix/version.ts";

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
