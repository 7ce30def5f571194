import { describe, expect, test } from "bun:test";
import { nixCommandLine, parseSigstopArgs, parseSize, takeOverSettings } from "../../src/sigstop/args.ts";

const _ = (argv: string[]) => parseSigstopArgs(argv, {});

describe("nix-sigstop arguments", () => {
  test("everything after the wrapper's options goes to nix verbatim", () => {
    const p = _(["--report", "r.json", "eval", "--expr", "1 + 1", "--report", "x"]);
    expect(p.options.report).toBe("r.json");
    expect(p.nixArgs).toEqual(["eval", "--expr", "1 + 1", "--report", "x"]);
  });
  test("-- ends the wrapper's options", () => expect(_(["--", "--version"]).nixArgs).toEqual(["--version"]));
  test("--help only as the first argument", () => {
    expect(_(["--help"]).options.help).toBe(true);
    expect(_(["eval", "--help"]).options.help).toBe(false);
    expect(_(["eval", "--help"]).nixArgs).toEqual(["eval", "--help"]);
  });
  test("--opt=value form", () => expect(_(["--buffer-size=1M", "eval"]).options.bufferBytes).toBe(1048576));
  test("a missing value is a usage error", () => expect(() => _(["--report"])).toThrow(/--report needs a value/));
  test("bad sizes name the option", () => expect(() => _(["--buffer-size", "lots", "eval"])).toThrow(/--buffer-size: expected a size/));
  test("environment defaults", () => {
    const p = parseSigstopArgs(["eval"], { NIX_SIGSTOP_BUFFER: "2M", NIX_SIGSTOP_NIX: "/opt/nix" });
    expect(p.options.bufferBytes).toBe(2 * 1048576);
    expect(p.options.nix).toBe("/opt/nix");
  });
});

describe("taking over store and build-hook", () => {
  test.each([
    [["build", "--store", "daemon", "-f", "x"], { nixArgs: ["build", "-f", "x"], store: "daemon" }],
    [["--option", "store", "unix:///s", "eval"], { nixArgs: ["eval"], store: "unix:///s" }],
    [["--build-hook", "/h", "eval"], { nixArgs: ["eval"], buildHook: "/h" }],
    [["--option", "build-hook", "/h", "--option", "cores", "2"], { nixArgs: ["--option", "cores", "2"], buildHook: "/h" }],
    [["run", "x", "--", "--store", "y"], { nixArgs: ["run", "x", "--", "--store", "y"] }],
  ])("%p", (args, expected) => expect(takeOverSettings(args)).toEqual({ store: undefined, buildHook: undefined, ...expected }));
  test("our settings come first", () =>
    expect(nixCommandLine("nix", "unix:///p", "/h", ["eval", "--", "x"])).toEqual(["nix", "--option", "store", "unix:///p", "--option", "build-hook", "/h", "eval", "--", "x"]));
});

test.each([
  ["4096", 4096],
  ["64M", 64 << 20],
  ["1G", 1 << 30],
  ["1.5K", 1536],
  ["2MiB", 2 << 20],
])("size %p", (t, n) => expect(parseSize(t, "x")).toBe(n));
