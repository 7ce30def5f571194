// Expected: a hook killed while its build runs in one slot of a shared pilot job
// (pilot-builds-per-job = 4; nix-build interrupted: Nix ≤ 2.34 SIGKILLs the hook's group) does not
// take the job down under the builds in its other slots: its reaper does not cancel the job (other
// builds run there), only that build's agent leaves. The three builds of another nix-build in the
// same job succeed, with the right outputs.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import { NSH_BIN, startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { jobsOf, salt, until } from "./helpers.ts";

const BOUND_MS = 60_000;

let lab: ClusterLab;
beforeAll(async () => {
  lab = await startClusterLab("pilot-slots-hook-killed", "slurm");
  // A fresh node store made by two Nix processes at once can fail (Nix 2.8's race creating its
  // profiles link): one build first, as a real node's store exists already.
  const warm = await lab.nixBuild([lab.nix.expr("wide"), "--argstr", "salt", `warm${salt()}`, "--arg", "n", "1"]);
  expect(warm.code).toBe(0);
  lab.writeConf("pilot-idle-time = 30\npilot-max-jobs = 1\npilot-builds-per-job = 4");
}, 120000);
afterAll(async () => {
  await lab?.cleanup();
});

const args = (s: string, n: number, sleep: string) =>
  [lab.nix.expr("slots"), "--argstr", "salt", s, "--arg", "n", String(n), "--argstr", "sleep", sleep, "-j", String(n)];
const spawnBuild = (a: string[]) =>
  Bun.spawn(["nix-build", "--store", "daemon", "--option", "build-hook", NSH_BIN, "--no-out-link", ...a], {
    env: lab.nix.env,
    cwd: lab.nix.root,
    stdio: ["ignore", "pipe", "pipe"],
  });
const running = (s: string, n: number) => {
  const recs = jobsOf(lab, s).filter((j) => j.state === "running" && j.jobId);
  return recs.length === n ? recs : undefined;
};

test("a hook killed mid-build in a shared job: the builds in its other slots succeed", async () => {
  const kept = salt();
  const killed = `${salt()}k`;
  const siblings = spawnBuild(args(kept, 3, "25"));
  const victim = spawnBuild(args(killed, 1, "60"));
  try {
    // All four in the one job the cap allows (pilot-max-jobs = 1), building.
    const inJob = await until(() => {
      const a = running(kept, 3);
      const b = running(killed, 1);
      return a && b ? [...a, ...b] : undefined;
    }, BOUND_MS, 250);
    expect(inJob).toBeDefined();
    expect(new Set(inJob!.map((j) => j.jobId)).size).toBe(1);
    await Bun.sleep(1000);
    victim.kill("SIGINT");
    const code = await siblings.exited;
    const out = await new Response(siblings.stdout).text();
    if (code !== 0) console.log(await new Response(siblings.stderr).text());
    expect(code).toBe(0);
    const contents = out.trim().split("\n").map((o) => fs.readFileSync(o, "utf8").trim()).sort();
    expect(contents).toEqual([0, 1, 2].map((i) => `slots ${i} ${kept}`).sort());
    expect(jobsOf(lab, kept).every((j) => j.state === "succeeded" && j.jobId === inJob![0]!.jobId)).toBe(true);
  } finally {
    victim.kill("SIGKILL");
    siblings.kill("SIGKILL");
  }
}, 600_000);
