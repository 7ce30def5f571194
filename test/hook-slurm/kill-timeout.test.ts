// Expected: nsh's hook behaves under Nix's newer way of ending a hook. Nix ≥ 2.35 sends SIGTERM to
// the hook's process group and SIGKILL after `build-hook-kill-timeout` ms (Nix master's setting,
// commit 712d38add8; 500 ms in 2.35, which has no setting; nix-protocols.md §1.7). Here the test
// plays Nix's part on a RUNNING job:
//   - a long timeout (60000 ms, the value Nix's own test uses): the hook cancels its job and exits by
//     itself, long before any SIGKILL, and nix-build says the job was cancelled;
//   - the default 500 ms: whether or not the hook is done by then, the job ends CANCELLED (the hook's
//     own cancel, or else nsh's reaper outside the group) and `nsh jobs` records it as cancelled.
// How long the hook took from SIGTERM to its exit is printed, not asserted (loaded machines).
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import { NSH_BIN, startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { isAlive } from "../lab/proc.ts";
import { jobEnded, jobInState, jobsOf, salt, until } from "./helpers.ts";

const BOUND_MS = 30_000;
let lab: ClusterLab;
beforeAll(async () => {
  lab = await startClusterLab("kill-timeout");
}, 180000);
afterAll(async () => {
  await lab?.cleanup();
});

/** The hook's process group when it leads one (as Nix starts it), else just the hook. */
function groupOf(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const pgid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
  return pgid === pid ? -pid : pid;
}

async function nixKills(killTimeoutMs: number) {
  const s = salt();
  const p = Bun.spawn(
    ["nix-build", "--store", "daemon", "--option", "build-hook", NSH_BIN, "--no-out-link", lab.nix.expr("slurm-job"), "--argstr", "salt", s, "--argstr", "sleep", "60"],
    { env: lab.nix.env, cwd: lab.nix.root, stdio: ["ignore", "pipe", "pipe"] },
  );
  const stderr = new Response(p.stderr).text();
  try {
    const id = await jobInState(lab, s, "RUNNING");
    expect(id).toBeDefined();
    await Bun.sleep(1000);
    const hookPid = jobsOf(lab, s)[0]!.hookPid;
    const target = groupOf(hookPid);
    const t0 = performance.now();
    process.kill(target, "SIGTERM");
    const exitedBy = await until(() => (isAlive(hookPid) ? undefined : Math.round(performance.now() - t0)), killTimeoutMs, 10);
    if (exitedBy === undefined && isAlive(hookPid)) process.kill(target, "SIGKILL");
    const ended = await jobEnded(lab, id!, BOUND_MS);
    const ms = Math.round(performance.now() - t0);
    console.log(
      `build-hook-kill-timeout ${killTimeoutMs} ms: hook ${exitedBy === undefined ? "SIGKILLed" : `exited by itself after ${exitedBy} ms`}; ` +
        `job ${id} ${ended ?? "still there"} ${ms} ms after SIGTERM`,
    );
    expect(ended).toBe("CANCELLED");
    const rec = await until(() => (jobsOf(lab, s)[0]?.state === "cancelled" ? true : undefined), BOUND_MS);
    expect(rec).toBe(true);
    return { id: id!, exitedBy, stderr: await Promise.race([stderr, Bun.sleep(BOUND_MS).then(() => "")]) };
  } finally {
    p.kill("SIGKILL");
  }
}

test("kill timeout 60000 ms: the hook cancels its job and exits by itself", async () => {
  const { id, exitedBy, stderr } = await nixKills(60_000);
  expect(exitedBy).toBeDefined();
  expect(stderr).toContain(`interrupted; job ${id} cancelled`);
}, 150000);

test("kill timeout 500 ms (Nix's default): the job ends cancelled either way", async () => {
  await nixKills(500);
}, 150000);
