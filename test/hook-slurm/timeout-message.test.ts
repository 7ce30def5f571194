// Expected: a build that runs into Nix's `timeout` or `max-silent-time` on the node gets a line
// from nsh saying that it timed out and naming the limit and its value, on every Nix. On Nix ≥ 2.29
// (sid: 2.34) Nix itself says only "builder failed with exit code 1" and nix-build exits 1, so that
// line is the only place the user sees why; it also says that this is how Nix reports it.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { hasStackTrace, salt } from "./helpers.ts";

let lab: ClusterLab;
beforeAll(async () => {
  lab = await startClusterLab("timeout-msg");
}, 180000);
afterAll(async () => {
  await lab?.cleanup();
});

/** Nix ≥ 2.29 no longer decodes the hook's exit status. */
const newNix = () => lab.nix.nixVersionNumbers[0]! > 2 || lab.nix.nixVersionNumbers[1]! >= 29;

async function build(script: string, option: string, value: string) {
  const s = salt();
  const r = await lab.nixBuild([lab.nix.expr("slurm-job"), "--argstr", "salt", s, "--argstr", "script", script, "--option", option, value]);
  const line = r.stderr.split("\n").find((l) => l.startsWith("nsh: job ") && l.includes(" timed out: "));
  console.log(`${lab.nix.nixVersion}: nix-build exit ${r.code}; ${line ?? "(no nsh timeout line)"}`);
  if (!line) console.log(r.stderr);
  expect(r.code).not.toBe(0);
  expect(hasStackTrace(r.stderr)).toBe(false);
  if (newNix()) expect(r.stderr).toMatch(/builder failed with exit code 1/);
  return line ?? "";
}

test("timeout 5: nsh says the build timed out on Nix's timeout of 5 s", async () => {
  const line = await build("/bin/sleep 60", "timeout", "5");
  expect(line).toContain("timed out: it ran into Nix's timeout of 5 s");
  if (newNix()) expect(line).toContain('Nix reports it as "builder failed with exit code 1"');
}, 120000);

test("max-silent-time 4: nsh names max-silent-time", async () => {
  const line = await build("/bin/sleep 60", "max-silent-time", "4");
  expect(line).toContain("timed out: it ran into Nix's max-silent-time of 4 s without output");
}, 120000);
