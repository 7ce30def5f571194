// Expected: a hook that remembers placing the agent binary submits the job before its ssh check
// of the login host; when that check finds the binary gone (someone cleaned the cluster's state
// directory), the hook places it again, replaces the job it submitted, and the build succeeds,
// saying what happened. No job is left behind.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { jobsOf, salt, squeue } from "./helpers.ts";

let lab: ClusterLab;
beforeAll(async () => {
  lab = await startClusterLab("agent-missing");
}, 120000);
afterAll(async () => {
  await lab?.cleanup();
});

test("the agent binary removed between two builds: placed again, job replaced, build succeeds", async () => {
  const first = await lab.nixBuild([lab.nix.expr("chain"), "--argstr", "salt", salt(), "-A", "dep"]);
  expect(first.code).toBe(0);
  const memo = JSON.parse(fs.readFileSync(path.join(lab.nix.root, "nsh-state", "agent-placed.json"), "utf8")) as Record<string, { value: string }>;
  const placed = Object.values(memo).map((e) => e.value);
  expect(placed).toHaveLength(1);
  expect(fs.existsSync(placed[0]!)).toBe(true);
  fs.rmSync(path.join(lab.clusterState, "bin"), { recursive: true, force: true });

  const s = salt();
  const second = await lab.nixBuild([lab.nix.expr("chain"), "--argstr", "salt", s, "-A", "dep"]);
  if (second.code !== 0) console.log(second.stderr);
  expect(second.code).toBe(0);
  expect(second.stderr).toMatch(/the agent binary was missing on .*; placed it again and resubmitting job \d+/);
  expect(fs.existsSync(placed[0]!)).toBe(true);
  const jobs = jobsOf(lab, s);
  expect(jobs.map((j) => j.state)).toEqual(["succeeded"]);
  // The replaced job is not left queued or running.
  const left = await squeue(lab);
  expect([...left.keys()]).toEqual([]);
}, 240000);
