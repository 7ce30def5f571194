// Expected: once the hook has accepted a build, it runs at `hook-niceness` (default 5) steps below the
// priority Nix started it with, so that on a busy machine the next hooks (Nix waits for each one's answer
// before it starts the next build) get the CPU before the copies and waits of builds already accepted.
// With hook-niceness = 0 the hook keeps Nix's priority. Seen in /proc during a running build.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import { NSH_BIN, startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { confWith, jobInState, jobsOf, salt } from "./helpers.ts";

let lab: ClusterLab;
beforeAll(async () => {
  lab = await startClusterLab("hook-niceness");
}, 180000);
afterAll(async () => {
  await lab?.cleanup();
});

/** niceness and parent of a process, from /proc/PID/stat (fields 19 and 4) */
function statOf(pid: number): { nice: number; ppid: number } {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { nice: Number(f[16]), ppid: Number(f[1]) };
}

async function niceDuringBuild(): Promise<{ hook: number; nix: number }> {
  const s = salt();
  const p = Bun.spawn(
    ["nix-build", "--store", "daemon", "--option", "build-hook", NSH_BIN, "--no-out-link", lab.nix.expr("slurm-job"),
      "--argstr", "salt", s, "--argstr", "sleep", "4"],
    { env: lab.nix.env, cwd: lab.nix.root, stdio: ["ignore", "pipe", "pipe"] },
  );
  try {
    expect(await jobInState(lab, s, "RUNNING")).toBeDefined();
    const hook = statOf(jobsOf(lab, s)[0]!.hookPid);
    const nix = statOf(hook.ppid);
    expect(await p.exited).toBe(0);
    return { hook: hook.nice, nix: nix.nice };
  } finally {
    p.kill("SIGKILL");
  }
}

test("an accepted build's hook runs 5 niceness steps below Nix's priority by default", async () => {
  const n = await niceDuringBuild();
  expect(n.hook).toBe(Math.min(19, n.nix + 5));
}, 120000);

test("hook-niceness = 0 leaves the hook at Nix's priority", async () => {
  confWith(lab, { "hook-niceness": "0" });
  try {
    const n = await niceDuringBuild();
    expect(n.hook).toBe(n.nix);
  } finally {
    lab.writeConf();
  }
}, 120000);
