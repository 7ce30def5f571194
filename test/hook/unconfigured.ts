// Shared by the test/hook/unconfigured-*.test.ts scenarios: nsh is Nix 2.8's build hook while its
// setup lacks something a submit needs. Each scenario checks, with real nix-build:
//   - single-user, no builders: the build succeeds locally, and nsh's warning names what is missing;
//   - through the daemon: the same, and the warning reaches the client;
//   - a closure of 4 derivations with a builder for another system (build-remote declines each
//     and stays, so one hook process is asked about every derivation): all are built locally,
//     and the warning appears once, not once per derivation.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { startNixLab, type NixLab } from "../lab/nix.ts";
import { DIST_NSH } from "./harness.ts";

export interface UnconfiguredScenario {
  name: string;
  /** writes whatever nsh.conf (or token file) the scenario has */
  setup(lab: NixLab): void;
  /** the warning names these */
  named: string[];
  /** and not these (the settings that are there) */
  notNamed: string[];
}

const WARNING = "nsh: warning: nsh is not set up, so it builds nothing on the cluster; missing: ";
const occurrences = (text: string, needle: string) => text.split(needle).length - 1;

export function unconfiguredScenario(s: UnconfiguredScenario): void {
  let lab: NixLab;
  beforeAll(async () => {
    lab = await startNixLab({ name: s.name });
    s.setup(lab);
    await lab.startDaemon();
  });
  afterAll(async () => {
    await lab?.cleanup();
  });

  const salt = () => `${s.name.slice(0, 4)}${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const hook = ["--no-out-link", "--option", "build-hook", DIST_NSH];

  function expectWarnedOnce(stderr: string) {
    if (occurrences(stderr, WARNING) !== 1) console.log(stderr);
    expect(occurrences(stderr, WARNING)).toBe(1);
    const line = stderr.split("\n").find((l) => l.includes(WARNING))!;
    for (const n of s.named) expect(line).toContain(n);
    for (const n of s.notNamed) expect(line).not.toContain(n);
    // nsh accepted nothing, and failed nothing
    expect(stderr).not.toMatch(/on 'slurm:/);
    expect(stderr).not.toContain("nsh: error:");
  }

  const built = (lab: NixLab, out: string) => fs.readFileSync(path.join(lab.storeDir, path.basename(out.trim())), "utf8");

  test.each([
    ["single-user", [] as string[]],
    ["through the daemon", ["--store", "daemon"]],
  ])("%s, no builders: the build is local and succeeds, one warning names what is missing", async (_mode, storeArgs) => {
    const x = salt();
    const r = await lab.run(["nix-build", ...storeArgs, lab.expr("trivial"), "--argstr", "salt", x, ...hook, "--builders", ""]);
    if (r.code !== 0) console.log(r.stderr);
    expect(r.code).toBe(0);
    expect(built(lab, r.stdout)).toBe(`hi ${x}\n`);
    expectWarnedOnce(r.stderr);
  });

  test("four derivations asked of one hook process: all built, one warning", async () => {
    const x = salt();
    const builders = ["--builders", "ssh://nowhere.invalid aarch64-linux"];
    const r = await lab.run(["nix-build", lab.expr("many"), "--argstr", "salt", x, "--arg", "n", "3", ...hook, ...builders]);
    if (r.code !== 0) console.log(r.stderr);
    expect(r.code).toBe(0);
    expect(built(lab, r.stdout).trim().split(" ")).toHaveLength(3);
    expectWarnedOnce(r.stderr);
  });
}
