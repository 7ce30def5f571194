// nsh as Nix's external builder with a PBS backend (external-builder-<kind>.test.ts), on the sid
// root's Nix 2.34 (NSH_LAB_SUITE=sid; on a Nix without external-builders every test skips, and no
// lab starts). The real OpenPBS lab (test/lab/pbs.ts) runs on the host, built for it, while that Nix
// runs inside the root (test/lab/roots.ts): the daemon enters the root with the PBS installation and
// the lab's PBS_HOME bind-mounted at their host paths, and the host's /etc/passwd and /etc/group (the
// PBS user, as the host's tools and sshd know it); the root has the one library the clients need
// beyond its own (libcjson1). The network is the host's, so the clients reach the server over the
// lab's veth as the hook's do. The job's node is the host (its Nix 2.8).
// Expected, as with the hook: a chain is built as two PBS jobs, its log in nix-build's output and
// `nix log`; a failing builder fails the build with its log and leaves no job; interrupting
// nix-build, or Nix's own timeout, ends the running job (nsh's reaper, inside the root, reaches PBS).
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { hasStackTrace, salt, until } from "../hook-slurm/helpers.ts";
import { NSH_BIN } from "../lab/cluster.ts";
import { bindPaths, enterScript } from "../lab/root-scripts.ts";
import { type LabRoot, selectedRoot, versionNumbers } from "../lab/roots.ts";
import { jobGone, jobsOf } from "./scenarios.ts";
import { type PbsHookLab, type PbsKind, startPbsHookLab } from "./lab.ts";

const SYSTEM = `${process.arch === "arm64" ? "aarch64" : "x86_64"}-linux`;
const REPO_DIR = path.resolve(import.meta.dir, "..", "..");

async function startLab(kind: PbsKind, root: LabRoot): Promise<PbsHookLab> {
  const lab = await startPbsHookLab(kind, `xb-${kind}`);
  lab.writeConf("system-features = nsh");
  // In the daemon's environment, not its nix.conf: the job's node (the host's Nix 2.8) reads that one.
  const builders = [{ systems: [SYSTEM], program: NSH_BIN, args: ["external-builder"] }];
  const nixConfig = `extra-experimental-features = external-builders\nexternal-builders = ${JSON.stringify(builders)}`;
  const binds = [
    "/tmp", os.tmpdir(), "/var/tmp", REPO_DIR,
    path.dirname(lab.pbs.exec), path.dirname(lab.pbs.root), "/etc/passwd", "/etc/group",
  ];
  fs.writeFileSync(path.join(lab.nix.root, "bin", ".enter"), enterScript(root.dir, bindPaths(binds)), { mode: 0o755 });
  await lab.nix.stopDaemon();
  await lab.nix.startDaemon({ NSH_CONF: lab.nshConf, PBS_CONF_FILE: lab.pbs.confFile, NIX_CONFIG: nixConfig });
  return lab;
}

/** A PBS job of the build salted `s` once PBS shows it running. */
const runningJob = (lab: PbsHookLab, s: string) =>
  until(async () => {
    const rec = (await jobsOf(lab, s))[0];
    return rec?.jobId && (await lab.qstat(rec.jobId))?.job_state === "R" ? rec.jobId : undefined;
  }, 60_000, 250);

export function externalBuilderPbsScenarios(kind: PbsKind): void {
  let lab: PbsHookLab | undefined;
  let skip = "";
  beforeAll(async () => {
    const root = await selectedRoot();
    const [major = 0, minor = 0] = versionNumbers(root?.nixVersion ?? "nix 2.8.0");
    const supported = root && (major > 2 || (major === 2 && minor >= 32));
    if (!supported) skip = `skipped: ${root?.nixVersion ?? "the host's Nix"} has no external-builders`;
    else lab = await startLab(kind, root);
  }, 60 * 60_000);
  afterAll(async () => {
    await lab?.cleanup();
  });
  const argv = (args: string[]) => ["nix-build", "--store", "daemon", "--no-out-link", ...args];
  const nixBuild = (args: string[]) => lab!.nix.run(argv(args), { timeoutMs: 200_000 });
  const jobArgs = (s: string, ...more: string[]) => [lab!.nix.expr("pbs-job"), "--argstr", "salt", s, ...more];

  test(`${kind} external builder: a chain is two PBS jobs, its log in nix-build's output and nix log`, async () => {
    if (skip) return console.log(skip);
    const s = salt();
    const r = await nixBuild([lab!.nix.expr("chain"), "--argstr", "salt", s]);
    if (r.code !== 0) console.log(r.stderr, lab!.pbs.logTails(60));
    expect(r.code).toBe(0);
    const out = r.stdout.trim();
    expect(fs.readFileSync(out, "utf8").trim()).toBe(`top dep-${s}`);
    expect(r.stderr).toContain(`on '${kind}'`);
    expect(r.stderr).toContain("building top");
    expect(r.stderr).not.toContain("warning:");
    const drv = (await lab!.nix.run(["nix-store", "-q", "--deriver", out])).stdout.trim();
    expect((await lab!.nix.run(["nix-store", "--store", "daemon", "-l", drv])).stdout).toContain("building top");
    expect((await lab!.nix.run(["nix-store", "--store", lab!.nodeStore, "--check-validity", out])).code).toBe(0);
    const mine = await jobsOf(lab!, s);
    expect(mine.map((j) => j.state)).toEqual(["succeeded", "succeeded"]);
    expect((await lab!.qstat(mine[0]!.jobId!))?.Job_Owner).toStartWith(`${lab!.pbs.user.name}@`);
  }, 300_000);

  test(`${kind} external builder: a failing builder fails the build with its log, no job left`, async () => {
    if (skip) return;
    const s = salt();
    const r = await nixBuild(jobArgs(s, "--argstr", "script", `echo failing-${s} >&2; exit 3`));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`failing-${s}`);
    expect(hasStackTrace(r.stderr)).toBe(false);
    const [rec] = await jobsOf(lab!, s);
    expect(rec?.state).toBe("failed");
    expect(await jobGone(lab!, rec!.jobId!, 60_000)).toBe(true);
  }, 300_000);

  test(`${kind} external builder: interrupting nix-build ends the running job`, async () => {
    if (skip) return;
    const s = salt();
    const p = Bun.spawn(argv(jobArgs(s, "--argstr", "sleep", "60")), {
      env: lab!.nix.env, cwd: lab!.nix.root, stdio: ["ignore", "pipe", "pipe"],
    });
    try {
      const id = await runningJob(lab!, s);
      expect(id).toBeDefined();
      p.kill("SIGINT");
      expect(await jobGone(lab!, id!, 30_000)).toBe(true); // well before the 60 s builder would end it
      const cancelled = async () => ((await jobsOf(lab!, s))[0]?.state === "cancelled" ? true : undefined);
      expect(await until(cancelled, 30_000, 250)).toBe(true);
    } finally {
      p.kill("SIGKILL");
    }
  }, 300_000);

  test(`${kind} external builder: Nix's timeout ends the job`, async () => {
    if (skip) return;
    const s = salt();
    const r = await nixBuild(["--option", "timeout", "10", ...jobArgs(s, "--argstr", "sleep", "60")]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/timed out/);
    const id = (await jobsOf(lab!, s))[0]?.jobId;
    expect(id).toBeDefined();
    expect(await jobGone(lab!, id!, 30_000)).toBe(true);
  }, 300_000);
}
