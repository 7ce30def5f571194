// The end-to-end scenarios every PBS backend runs (build-*.test.ts, one file per backend): the real
// Nix 2.8 daemon with nsh as build hook, the real OpenPBS lab, the lab sshd standing for the node.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { hasStackTrace, salt, until } from "../hook-slurm/helpers.ts";
import { NSH_BIN } from "../lab/cluster.ts";
import { type PbsHookLab, type PbsKind, startPbsHookLab } from "./lab.ts";

interface JobRec { drv: string; jobId?: string; state: string; message?: string; marks?: Record<string, number> }

export async function jobsOf(lab: PbsHookLab, s: string): Promise<JobRec[]> {
  const r = await lab.nsh(["jobs", "--all", "--json"]);
  return r.stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as JobRec).filter((j) => j.drv.includes(s));
}

const sameJob = (a: string, b: string) => a.split(".")[0] === b.split(".")[0];

/** Whether PBS no longer has job `id` queued, held or running within `timeoutMs` (finished: F, or forgotten). */
export async function jobGone(lab: PbsHookLab, id: string, timeoutMs: number): Promise<boolean> {
  const gone = await until(async () => ([...(await lab.liveJobs()).keys()].some((j) => sameJob(j, id)) ? undefined : true), timeoutMs, 250);
  return gone === true;
}

export function buildScenarios(kind: PbsKind): void {
  let lab: PbsHookLab;
  beforeAll(async () => {
    lab = await startPbsHookLab(kind);
  }, 60 * 60_000);
  afterAll(async () => {
    await lab?.cleanup();
  });

  test(`${kind}: a chain of two derivations is built as two PBS jobs, run as the PBS user`, async () => {
    const s = salt();
    const r = await lab.nixBuild([lab.nix.expr("chain"), "--argstr", "salt", s]);
    if (r.code !== 0) console.log(r.stderr, lab.pbs.logTails(60));
    expect(r.code).toBe(0);
    const out = r.stdout.trim();
    expect(fs.readFileSync(out, "utf8").trim()).toBe(`top dep-${s}`);
    expect(r.stderr).toContain(`on '${kind}'`);
    expect(r.stderr).toContain("building top"); // the builder's output streamed back from the job
    expect(r.stderr).not.toContain("nsh: warning:"); // the scheduler's request lines are debug output
    expect((await lab.nix.run(["nix-store", "--store", lab.nodeStore, "--check-validity", out])).code).toBe(0);
    // The build log is Nix's too: `nix log` (nix-store -l) shows the builder's output.
    const drv = (await lab.nix.run(["nix-store", "-q", "--deriver", out])).stdout.trim();
    expect((await lab.nix.run(["nix-store", "--store", "daemon", "-l", drv])).stdout).toContain("building top");
    const mine = await jobsOf(lab, s);
    expect(mine.map((j) => j.state)).toEqual(["succeeded", "succeeded"]);
    const job = await lab.qstat(mine[0]!.jobId!);
    expect(job?.Job_Owner).toStartWith(`${lab.pbs.user.name}@`);
    expect(job?.Exit_status).toBe(0);
  }, 300_000);

  test(`${kind}: pbsResources reach the job (qstat -f)`, async () => {
    const s = salt();
    const r = await lab.nixBuild([lab.nix.expr("pbs-job"), "--argstr", "salt", s]);
    if (r.code !== 0) console.log(r.stderr);
    expect(r.code).toBe(0);
    const [rec] = await jobsOf(lab, s);
    const job = (await lab.qstat(rec!.jobId!)) as { Resource_List?: Record<string, string> } | null;
    expect(job?.Resource_List?.walltime).toBe("00:07:00");
    expect(String(job?.Resource_List?.ncpus)).toBe("1");
  }, 300_000);

  test(`${kind}: a failing build fails nix-build with the builder's message, and its job is gone`, async () => {
    const s = salt();
    const script = "echo 'builder failing on purpose' >&2; exit 3";
    const r = await lab.nixBuild([lab.nix.expr("pbs-job"), "--argstr", "salt", s, "--argstr", "script", script]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("builder failing on purpose");
    expect(hasStackTrace(r.stderr)).toBe(false);
    const [rec] = await jobsOf(lab, s);
    expect(rec?.state).toBe("failed");
    // The job ends by itself once its agent has said the build failed (PBS passes through E first).
    expect(await jobGone(lab, rec!.jobId!, 60_000)).toBe(true);
  }, 300_000);

  cliScenarios(kind, () => lab);
  settingScenarios(kind, () => lab);

  test(`${kind}: refused pbsResources fail the build with a message naming the key, and no job is submitted`, async () => {
    const s = salt();
    const before = await lab.liveJobs();
    const r = await lab.nixBuild([lab.nix.expr("pbs-job"), "--argstr", "salt", s, "--argstr", "resources",
      JSON.stringify({ walltime: "00:07:00", queue_priority: "999" })]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("queue_priority");
    expect(r.stderr).toContain("pbsResources");
    expect(hasStackTrace(r.stderr)).toBe(false);
    expect((await jobsOf(lab, s)).filter((j) => j.jobId)).toEqual([]);
    expect([...(await lab.liveJobs()).keys()].filter((id) => !before.has(id))).toEqual([]);
  }, 300_000);
}

/** `nsh doctor` and `nsh cancel` with the backend: the whole setup checked; a job of a build in progress ended by hand. */
export function cliScenarios(kind: PbsKind, lab: () => PbsHookLab): void {
  test(`${kind}: nsh doctor checks the setup and says it is in place`, async () => {
    const r = await lab().nsh(["doctor"]);
    if (r.code !== 0) console.log(r.stdout, r.stderr);
    expect(r.stdout).toContain("everything nsh needs is in place");
    expect(r.code).toBe(0);
  }, 120_000);

  test(`${kind}: nsh jobs lists a running build's job; nsh cancel ends it, and the build fails`, async () => {
    const s = salt();
    const build = lab().nixBuild([lab().nix.expr("pbs-job"), "--argstr", "salt", s, "--argstr", "sleep", "60"]);
    const id = await jobIn(lab(), s, "R");
    expect(id).toBeDefined();
    // `nsh jobs` (active jobs, as a table) shows the build's job running: once its hook has heard so
    // (the job's start notice, or the next poll), not necessarily the moment qstat says R.
    const t0 = Date.now();
    const listed = await until(async () => {
      const line = (await lab().nsh(["jobs"])).stdout.split("\n").find((l) => l.includes(id!));
      return line?.includes("running") ? line : undefined;
    }, 10_000, 100);
    const marks = (await jobsOf(lab(), s))[0]?.marks;
    const lag = Date.now() - t0;
    console.log(`${kind}: nsh jobs showed the job running ${lag} ms after qstat did; marks ${JSON.stringify(marks)}`);
    expect(listed).toContain("running");
    const r = await lab().nsh(["cancel", id!]);
    expect(r.stdout).toContain(`cancelled job ${id}`);
    expect(await jobGone(lab(), id!, 30_000)).toBe(true);
    const b = await build;
    expect(b.code).not.toBe(0);
    expect(hasStackTrace(b.stderr)).toBe(false);
  }, 300_000);
}

/**
 * collect-garbage and remote-nix-bin-dir with the backend: the job collects the node store's garbage
 * once the outputs are home; the node's nix-store is the one in remote-nix-bin-dir, and one that
 * holds none fails the build naming the node and the path (and its job is gone).
 */
export function settingScenarios(kind: PbsKind, lab: () => PbsHookLab): void {
  test(`${kind}: collect-garbage = true: the output is valid here and gone from the node store`, async () => {
    lab().confWith({ "collect-garbage": "true" });
    try {
      const s = salt();
      const r = await lab().nixBuild([lab().nix.expr("pbs-job"), "--argstr", "salt", s]);
      if (r.code !== 0) console.log(r.stderr);
      expect(r.code).toBe(0);
      const out = r.stdout.trim();
      expect((await lab().nix.run(["nix-store", "--check-validity", out])).code).toBe(0);
      const validOnNode = async () =>
        (await lab().nix.run(["nix-store", "--store", lab().nodeStore, "--check-validity", out])).code === 0;
      expect(await until(async () => ((await validOnNode()) ? undefined : true), 30_000, 250)).toBe(true);
    } finally {
      lab().writeConf();
    }
  }, 300_000);

  // PBS starts the job's script through the user's login shell, whose profile sets PATH: the job's
  // PATH cannot be emptied through job-environment as with Slurm. So a remote-nix-bin-dir that holds
  // no nix-store shows the setting is used, and one whose nix-store leaves a mark shows it works.
  test(`${kind}: a remote-nix-bin-dir without nix-store is named with the node, and no job is left`, async () => {
    lab().confWith({ "remote-nix-bin-dir": "/nonexistent-nix/bin" });
    try {
      const s = salt();
      const r = await lab().nixBuild([lab().nix.expr("pbs-job"), "--argstr", "salt", s], 120_000);
      if (r.code === 0) console.log(r.stderr);
      expect(r.timedOut).toBe(false);
      expect(r.code).not.toBe(0);
      // The agent names its host (the lab's node shares the machine's host name) and nsh the job's node.
      const says = `on ${lab().pbs.serverHost} cannot build: there is no executable /nonexistent-nix/bin/nix-store`;
      expect(r.stderr).toContain(says);
      expect(hasStackTrace(r.stderr)).toBe(false);
      const [rec] = await jobsOf(lab(), s);
      expect(rec?.state).toBe("failed");
      expect(await jobGone(lab(), rec!.jobId!, 30_000)).toBe(true);
    } finally {
      lab().writeConf();
    }
  }, 300_000);

  test(`${kind}: the node's nix-store comes from remote-nix-bin-dir`, async () => {
    // A bin dir of the PBS user's whose nix-store leaves a mark, then is the real one.
    const bin = path.join(lab().clusterState, "nix-bin");
    const mark = path.join(lab().clusterState, "nix-bin-used");
    fs.mkdirSync(bin, { recursive: true });
    for (const f of fs.readdirSync("/usr/bin").filter((n) => n.startsWith("nix"))) {
      if (!fs.existsSync(path.join(bin, f))) fs.symlinkSync(path.join("/usr/bin", f), path.join(bin, f));
    }
    fs.rmSync(path.join(bin, "nix-store"));
    const script = `#!/bin/sh\ntouch ${mark}\nexec /usr/bin/nix-store "$@"\n`;
    fs.writeFileSync(path.join(bin, "nix-store"), script, { mode: 0o755 });
    fs.rmSync(mark, { force: true });
    lab().confWith({ "remote-nix-bin-dir": bin });
    try {
      const s = salt();
      const r = await lab().nixBuild([lab().nix.expr("pbs-job"), "--argstr", "salt", s]);
      if (r.code !== 0) console.log(r.stderr);
      expect(r.code).toBe(0);
      expect(fs.readFileSync(r.stdout.trim(), "utf8")).toBe(`job ${s}\n`);
      expect(fs.existsSync(mark)).toBe(true);
    } finally {
      lab().writeConf();
    }
  }, 300_000);
}

/** A PBS job of the build salted `s` once PBS shows it in `state` (Q: queued, R: running). */
async function jobIn(lab: PbsHookLab, s: string, state: string, timeoutMs = 60_000): Promise<string | undefined> {
  return until(async () => {
    const rec = (await jobsOf(lab, s))[0];
    return rec?.jobId && (await lab.qstat(rec.jobId))?.job_state === state ? rec.jobId : undefined;
  }, timeoutMs, 250);
}

/**
 * Interrupting nix-build (SIGINT, as Ctrl-C) ends the build's job whether it runs (a 60 s builder)
 * or waits in the queue (more cpus than the node has: PBS keeps it queued). Nix 2.8 SIGKILLs the
 * hook's process group, so the cancel comes from nsh's reaper, which must find the same server.
 */
export function cancelScenarios(kind: PbsKind): void {
  let lab: PbsHookLab;
  beforeAll(async () => {
    lab = await startPbsHookLab(kind, `cancel-${kind}`);
  }, 60 * 60_000);
  afterAll(async () => {
    await lab?.cleanup();
  });

  const cases: [string, string, string[]][] = [
    ["running", "R", ["--argstr", "sleep", "60"]],
    ["queued", "Q", ["--argstr", "resources", JSON.stringify({ ncpus: "64", walltime: "00:07:00" })]],
  ];
  for (const [what, state, args] of cases) {
    test(`${kind}: SIGINT to nix-build while its job is ${what}: no job is left`, async () => {
      const s = salt();
      const p = Bun.spawn(["nix-build", "--store", "daemon", "--option", "build-hook", NSH_BIN, "--no-out-link",
        lab.nix.expr("pbs-job"), "--argstr", "salt", s, ...args], { env: lab.nix.env, cwd: lab.nix.root, stdio: ["ignore", "pipe", "pipe"] });
      const stderr = new Response(p.stderr).text();
      try {
        const id = await jobIn(lab, s, state);
        if (!id) console.log(await Promise.race([stderr, Bun.sleep(100).then(() => "(nix-build still running)")]));
        expect(id).toBeDefined();
        await Bun.sleep(1000); // the build really is under way in that state
        expect((await lab.qstat(id!))?.job_state).toBe(state);
        p.kill("SIGINT");
        expect(await jobGone(lab, id!, 30_000)).toBe(true); // well before the 60 s builder would end it
        expect(await p.exited).not.toBe(0);
        const rec = await until(async () => {
          const r = (await jobsOf(lab, s))[0];
          return r?.state === "cancelled" ? r : undefined;
        }, 30_000, 250);
        expect(rec?.state).toBe("cancelled");
      } finally {
        p.kill("SIGKILL");
      }
    }, 300_000);
  }
}
