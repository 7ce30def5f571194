// Expected: a hook killed while its build runs in a pilot job (nix-build interrupted: Nix ≤ 2.34
// SIGKILLs the hook's group) leaves no half-used pilot behind: the hook held the pilot, so its
// reaper cancels the job, as for a job of its own (the pilot is not offered again, nobody else
// builds in it). The next build of the same shape succeeds in a new job.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import { NSH_BIN, startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { jobEnded, jobsOf, salt, until } from "./helpers.ts";

/** Generous, yet below the 60 s builder's own end. */
const BOUND_MS = 30_000;

let lab: ClusterLab;
beforeAll(async () => {
  lab = await startClusterLab("pilot-hook-killed", "slurm");
  lab.writeConf("pilot-idle-time = 120");
}, 120000);
afterAll(async () => {
  await lab?.cleanup();
});

const args = (s: string, sleep = "0") => [lab.nix.expr("slurm-job"), "--argstr", "salt", s, "--argstr", "params", "none", "--argstr", "sleep", sleep];

async function buildOne(): Promise<string> {
  const s = salt();
  const r = await lab.nixBuild(args(s), 300_000);
  if (r.code !== 0) console.log(r.stderr.slice(-3000));
  expect(r.code).toBe(0);
  expect(fs.readFileSync(r.stdout.trim(), "utf8").trim()).toBe(`job ${s}`);
  return jobsOf(lab, s)[0]!.jobId!;
}

test("interrupted mid-build in a pilot: the pilot job is cancelled, the next build gets a new job", async () => {
  const pilot = await buildOne();
  const s = salt();
  const p = Bun.spawn(["nix-build", "--store", "daemon", "--option", "build-hook", NSH_BIN, "--no-out-link", ...args(s, "60")], {
    env: lab.nix.env,
    cwd: lab.nix.root,
    stdio: ["ignore", "pipe", "pipe"],
  });
  try {
    // The second build runs in the first one's job.
    const inPilot = await until(() => {
      const r = jobsOf(lab, s)[0];
      return r?.jobId === pilot && r.state === "running" ? true : undefined;
    }, BOUND_MS);
    expect(inPilot).toBe(true);
    await Bun.sleep(1000);
    p.kill("SIGINT");
    expect(await jobEnded(lab, pilot, BOUND_MS)).toBe("CANCELLED");
  } finally {
    p.kill("SIGKILL");
  }
  const next = await buildOne();
  expect(next).not.toBe(pilot);
}, 600_000);
