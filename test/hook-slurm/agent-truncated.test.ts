// Expected: a truncated agent binary under its hash name on the cluster (as an upload cut short
// left it with nsh before this fix: 65,536 bytes) never fails a build. A hook that has not placed
// the agent yet replaces it before it submits; a hook that remembers placing it submits at once,
// then finds it wrong, places it again and replaces its job. Both builds succeed, and the whole
// binary is installed.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { NSH_BIN, startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { jobsOf, salt, squeue } from "./helpers.ts";

let lab: ClusterLab;
beforeAll(async () => {
  lab = await startClusterLab("agent-trunc");
}, 120000);
afterAll(async () => {
  await lab?.cleanup();
});

async function agentBin(): Promise<string> {
  const h = new Bun.CryptoHasher("sha256");
  for await (const chunk of Bun.file(NSH_BIN).stream()) h.update(chunk);
  return path.join(lab.clusterState, "bin", `nsh-${h.digest("hex").slice(0, 16)}`);
}

/** The binary's first 64 KiB in its place, executable. */
function truncate(bin: string): void {
  fs.mkdirSync(path.dirname(bin), { recursive: true });
  fs.writeFileSync(bin, fs.readFileSync(NSH_BIN).subarray(0, 65_536), { mode: 0o755 });
}

async function build(): Promise<string> {
  const s = salt();
  const r = await lab.nixBuild([lab.nix.expr("slurm-job"), "--argstr", "salt", s]);
  if (r.code !== 0) console.log(r.stderr);
  expect(r.code).toBe(0);
  expect(jobsOf(lab, s).map((j) => j.state)).toEqual(["succeeded"]);
  return r.stderr;
}

test("a truncated binary found by the first build is replaced before the job is submitted", async () => {
  const bin = await agentBin();
  truncate(bin);
  await build();
  expect(fs.statSync(bin).size).toBe(fs.statSync(NSH_BIN).size);
}, 240000);

test("a binary truncated after it was placed: the next build places it again and replaces its job", async () => {
  const bin = await agentBin();
  truncate(bin);
  const stderr = await build();
  expect(stderr).toMatch(/the agent binary was missing on .*; placed it again and resubmitting job \d+/);
  expect(fs.readFileSync(bin).equals(fs.readFileSync(NSH_BIN))).toBe(true);
  expect([...(await squeue(lab)).keys()]).toEqual([]);
}, 240000);
