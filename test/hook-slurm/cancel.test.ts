// Expected: interrupting nix-build (SIGINT, as Ctrl-C does) while nsh builds a derivation as a
// Slurm job ends the job, whether the job is already RUNNING (a `sleep 60` builder)
// or still PENDING (submitted held, hold = true in extraSlurmParams, so it never starts). Nix
// ≤ 2.34 SIGKILLs the hook's whole process group at once (nix-protocols.md §1.7), so the cancel
// comes from nsh's detached reaper; `nsh jobs` then records the job as cancelled. A job pending in a
// partition that is DOWN is cancelled alike. SIGTERM to the hook itself (what Nix ≥ 2.35 sends,
// 500 ms before SIGKILL) makes the hook cancel the job and exit at once, failing the build. A job
// cancelled from outside (scancel) fails the build at once, the message saying the job was cancelled.
// Timing: the reaper and the hook act at once (on EOF, on the signal) and the hook polls a running job
// at most every 2 s; the bounds (30 s) leave a loaded machine room and stay well below the 60 s builder,
// which is what ends the job when nothing cancels it.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { NSH_BIN, startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { isAlive } from "../lab/proc.ts";
import { jobEnded, jobState, jobsOf, salt, until, jobInState } from "./helpers.ts";

/** Generous, yet below the 60 s builder's own end. */
const BOUND_MS = 30_000;

let lab: ClusterLab;
beforeAll(async () => {
  lab = await startClusterLab("cancel");
}, 120000);
afterAll(async () => {
  await lab?.cleanup();
});

function startBuild(args: string[]) {
  return Bun.spawn(["nix-build", "--store", "daemon", "--option", "build-hook", NSH_BIN, "--no-out-link", ...args], {
    env: lab.nix.env,
    cwd: lab.nix.root,
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/**
 * Starts the build, waits until Slurm has its job in `want`, SIGINTs nix-build (or SIGTERMs the
 * hook), times the job's end.
 */
async function interruptAt(want: "RUNNING" | "PENDING", args: string[], s: string, how: "SIGINT nix-build" | "SIGTERM hook" = "SIGINT nix-build") {
  const p = startBuild(args);
  const stderr = new Response(p.stderr).text();
  try {
    const id = await jobInState(lab, s, want);
    if (!id) console.log(await Promise.race([stderr, Bun.sleep(100).then(() => "(nix-build still running)")]));
    expect(id).toBeDefined();
    // The build really is under way in that state (not merely submitted).
    await Bun.sleep(1000);
    expect(await jobState(lab, id!)).toBe(want);
    const hookPid = jobsOf(lab, s)[0]!.hookPid;
    const t0 = performance.now();
    if (how === "SIGINT nix-build") p.kill("SIGINT");
    else process.kill(hookPid, "SIGTERM");
    const ended = await jobEnded(lab, id!, BOUND_MS);
    const ms = Math.round(performance.now() - t0);
    console.log(`${how} while ${want}: job ${id} ${ended ?? "still there"} ${ms} ms after the signal`);
    expect(ended).toBe("CANCELLED");
    expect(ms).toBeLessThan(BOUND_MS);
    const code = await p.exited;
    if (how === "SIGTERM hook") {
      // The build fails at once, saying why; the hook is gone.
      expect(code).not.toBe(0);
      const err = await stderr;
      expect(err).toContain(`interrupted; job ${id} cancelled`);
      expect(Math.round(performance.now() - t0)).toBeLessThan(BOUND_MS);
      expect(isAlive(hookPid)).toBe(false);
    }
    // The record says what happened (the reaper writes it: the hook was killed).
    const rec = await until(() => {
      const r = jobsOf(lab, s)[0];
      return r?.state === "cancelled" ? r : undefined;
    }, BOUND_MS);
    expect(rec?.state).toBe("cancelled");
    return { id: id!, ms };
  } finally {
    p.kill("SIGKILL");
  }
}

test("SIGINT while the job is RUNNING cancels it", async () => {
  const s = salt();
  await interruptAt("RUNNING", [lab.nix.expr("slurm-job"), "--argstr", "salt", s, "--argstr", "sleep", "60"], s);
}, 120000);

test("SIGINT while the job is PENDING (held) cancels it", async () => {
  const s = salt();
  await interruptAt("PENDING", [lab.nix.expr("slurm-job"), "--argstr", "salt", s, "--argstr", "params", `{"hold": true, "comment": "held-${s}"}`], s);
}, 120000);

test("SIGINT while the job is PENDING in a DOWN partition cancels it", async () => {
  const s = salt();
  const part = lab.slurm.partition;
  await lab.slurm.run(["scontrol", "update", `partitionname=${part}`, "state=down"]);
  try {
    await interruptAt("PENDING", [lab.nix.expr("slurm-job"), "--argstr", "salt", s], s);
  } finally {
    await lab.slurm.run(["scontrol", "update", `partitionname=${part}`, "state=up"]);
  }
}, 120000);

test("SIGTERM to the hook while the job is RUNNING: the hook cancels it and fails the build", async () => {
  const s = salt();
  await interruptAt("RUNNING", [lab.nix.expr("slurm-job"), "--argstr", "salt", s, "--argstr", "sleep", "60"], s, "SIGTERM hook");
}, 120000);

test("SIGTERM to the hook while the job is PENDING: the hook cancels it and fails the build", async () => {
  const s = salt();
  await interruptAt("PENDING", [lab.nix.expr("slurm-job"), "--argstr", "salt", s, "--argstr", "params", `{"hold": true}`], s, "SIGTERM hook");
}, 120000);

test("scancel of the RUNNING job fails the build, saying the job was cancelled", async () => {
  const s = salt();
  const p = startBuild([lab.nix.expr("slurm-job"), "--argstr", "salt", s, "--argstr", "sleep", "60"]);
  const stderr = new Response(p.stderr).text();
  try {
    const id = await jobInState(lab, s, "RUNNING");
    expect(id).toBeDefined();
    await Bun.sleep(1000);
    const t0 = performance.now();
    await lab.slurm.run(["scancel", id!]);
    const code = await Promise.race([p.exited, Bun.sleep(BOUND_MS).then(() => "still running")]);
    const ms = Math.round(performance.now() - t0);
    console.log(`scancel while RUNNING: nix-build exited ${code} ${ms} ms after scancel`);
    expect(code).toBe(1);
    const err = await stderr;
    if (!err.includes(`job ${id} ended (CANCELLED`)) console.log(err);
    expect(err).toContain(`job ${id} ended (CANCELLED`);
    expect(jobsOf(lab, s)[0]?.state).toBe("failed");
  } finally {
    p.kill("SIGKILL");
  }
}, 120000);
