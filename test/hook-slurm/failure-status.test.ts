// Expected: a build that fails on the cluster ends nix-build as the same failure built locally
// does, with the same exit status and Nix's words for it (Nix 2.8 here):
//   - a builder that exits 1: "builder for '<drv>' failed with exit code 1"; nix-build exits 100
//     with a local store, 1 through the daemon (its protocol carries no status);
//   - Nix's `timeout` and `max-silent-time`: "timed out after N seconds [of silence]"; 101 with a
//     local store, 1 through the daemon.
// (Before: the hook exited 1 for a failed builder, so with a local store nix-build said 1, not 100.)
// On Nix >= 2.29 a hook's status no longer tells these apart (every one is "builder failed with exit
// code N"): there nsh's own line carries Nix's reason from the node, Nix says "failed with exit code 1" and
// nix-build exits 1. Nix's words per version: test/lab/nix-words.ts; the hook's status per version:
// hookFailureStatus's table (unit test).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { NSH_BIN, startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { builderFailed, hookStatusMapped, timedOut } from "../lab/nix-words.ts";
import { hasStackTrace, salt } from "./helpers.ts";

let lab: ClusterLab;
beforeAll(async () => {
  lab = await startClusterLab("fail-status");
}, 120000);
afterAll(async () => {
  await lab?.cleanup();
});

type Via = "daemon" | "local store";

/** nix-build of `script` through nsh (on the cluster) or by the local Nix, via the daemon or a local store. */
async function build(script: string, where: "nsh" | "local", via: Via, options: string[] = []) {
  const expr = [lab.nix.expr("same-script"), "--argstr", "salt", salt(), "--argstr", "script", script];
  const args = [...expr, "--arg", "cluster", where === "nsh" ? "true" : "false"];
  const hook = where === "nsh" ? ["--option", "build-hook", NSH_BIN] : [];
  const store = via === "daemon" ? ["--store", "daemon"] : [];
  const drv = (await lab.nix.run(["nix-instantiate", ...store, ...args])).stdout.trim();
  const env = { ...lab.nix.env, NSH_CONF: lab.nshConf };
  const r = await lab.nix.run(["nix-build", ...store, ...hook, "--no-out-link", ...args, ...options], { env, timeoutMs: 180000 });
  expect(drv).toMatch(/\.drv$/);
  expect(hasStackTrace(r.stderr)).toBe(false);
  // Nix's message with this build's .drv path made generic, to compare the two builds.
  return { code: r.code, stderr: r.stderr.replaceAll(drv, "<drv>"), raw: r.stderr };
}

const sleeps = "/bin/sleep 60; echo > $out";
type Words = (v: number[]) => RegExp;
const cases: Array<[string, string, string[], Words]> = [
  ["a builder exiting 1", "echo building; exit 1", [], (v) => builderFailed(v, "<drv>", 1)],
  ["Nix's timeout", sleeps, ["--option", "timeout", "3"], (v) => timedOut(v, "<drv>", 3, false)],
  ["Nix's max-silent-time", sleeps, ["--option", "max-silent-time", "3"], (v) => timedOut(v, "<drv>", 3, true)],
];

for (const via of ["local store", "daemon"] as const)
  for (const [name, script, options, words] of cases)
    test(`${name}, ${via}: nix-build's exit status and message as for a local build`, async () => {
      const v = lab.nix.nixVersionNumbers;
      const message = words(v);
      const [local, nsh] = await Promise.all([build(script, "local", via, options), build(script, "nsh", via, options)]);
      if (nsh.code !== local.code || !message.test(nsh.stderr)) console.log(`local:\n${local.raw}\nnsh:\n${nsh.raw}`);
      expect(local.code).not.toBe(0);
      expect(local.stderr).toMatch(message);
      // Where Nix reads no status from a hook (>= 2.29) its failure is a plain 1, whatever the cause.
      expect(nsh.code).toBe(hookStatusMapped(v) ? local.code : 1);
      expect(nsh.stderr).toMatch(message);
    }, 240000);
