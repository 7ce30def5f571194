import { expect, test } from "bun:test";
import { isHookInvocation } from "../../src/cli/hook.ts";
import { fallbackHook } from "../../src/hook/fallback.ts";

const subcommands = ["copy", "hook", "doctor", "sigstop"];

test.each([
  [["3"], false, true], // Nix ≤ 2.16, or ≥ 2.17 with build-hook = /path/to/nsh
  [["7"], false, true],
  [["--extra", "4"], false, true], // ≥ 2.17 with extra words in build-hook
  [["3"], true, false], // a terminal: someone typed it
  [["9"], false, true], // Nix 2.8 with -vvvvvvvvv: it does not cap the verbosity
  [["123"], false, false],
  [["x"], false, false],
  [[], false, false],
  [["copy", "--to", "h", "3"], false, false],
  [["--help", "3"], false, false],
])("%p (tty %p) → %p", (argv, tty, want) => expect(isHookInvocation(argv, tty, subcommands)).toBe(want));

test("the fallback: Nix 2.8's libexec build-remote, newer Nix's `nix __build-remote`, or fallback-build-hook", () => {
  expect(fallbackHook(undefined, () => "/usr/bin", (p) => p === "/usr/libexec/nix/build-remote")).toEqual(["/usr/libexec/nix/build-remote"]);
  expect(fallbackHook({ "fallback-build-hook": "" }, () => "/nix/store/x-nix/bin", (p) => p === "/nix/store/x-nix/bin/nix")).toEqual(["/nix/store/x-nix/bin/nix", "__build-remote"]);
  expect(fallbackHook({ "fallback-build-hook": " /opt/hook  --flag " }, () => "/usr/bin", () => true)).toEqual(["/opt/hook", "--flag"]);
});
