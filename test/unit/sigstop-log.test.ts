// nix-sigstop's plain log lines: the levels --quiet and --verbose select, and the line format.
import { expect, test } from "bun:test";
import { plainLog } from "../../src/sigstop/log.ts";

function lines(opts: { verbose?: boolean; quiet?: boolean }): string[] {
  const out: string[] = [];
  const log = plainLog("nix-sigstop", opts, (l) => out.push(l));
  log.debug("d");
  log.info("i");
  log.warn("w");
  log.error("e");
  return out;
}

test("default: info, warnings and errors, no time", () => {
  expect(lines({})).toEqual(["nix-sigstop: i\n", "nix-sigstop: warning: w\n", "nix-sigstop: error: e\n"]);
});

test("--quiet keeps only warnings and errors", () => {
  expect(lines({ quiet: true })).toEqual(["nix-sigstop: warning: w\n", "nix-sigstop: error: e\n"]);
});

test("--verbose adds debug lines, each with the time since start", () => {
  const out = lines({ verbose: true });
  expect(out).toHaveLength(4);
  for (const [i, l] of out.entries()) expect(l).toMatch(new RegExp(`^nix-sigstop: \\[\\d+\\.\\d\\ds\\] ${["", "", "warning: ", "error: "][i]}${"diwe"[i]}\\n$`));
});
