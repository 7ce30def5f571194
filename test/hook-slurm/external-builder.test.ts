// Expected: with Nix ≥ 2.32 (run with NSH_LAB_SUITE=sid: Nix 2.34.8, Slurm 26.05) and nix.conf
// `external-builders = [{systems, program = nsh, args = ["external-builder"]}]` plus the experimental
// feature, and no nsh build hook, Nix hands each build of a listed system to `nsh external-builder`,
// which builds it as a Slurm job exactly like the hook: the outputs land in the local store (built on
// the node's store), the builder's log is in nix-build's output and `nix-store -l`, `nsh jobs`
// records the job; a failing builder fails the build with its log; interrupting nix-build (Nix
// SIGKILLs the program's group) cancels the job through the reaper, and so does Nix's own `timeout`. On an older Nix the file skips.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { NSH_BIN, startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { hasStackTrace, jobEnded, jobInState, jobsOf, salt, until } from "./helpers.ts";

let lab: ClusterLab | undefined;
let supported = false;
const system = `${process.arch === "arm64" ? "aarch64" : "x86_64"}-linux`;

beforeAll(async () => {
  lab = await startClusterLab("extbuild");
  const [major = 0, minor = 0] = lab.nix.nixVersionNumbers;
  supported = major > 2 || (major === 2 && minor >= 32);
  if (!supported) return;
  // The cluster offers the lab expressions' feature; Nix itself does not (so no local build could take them).
  lab.writeConf("system-features = nsh");
  const builders = [{ systems: [system], program: NSH_BIN, args: ["external-builder"] }];
  fs.appendFileSync(
    path.join(lab.nix.confDir, "nix.conf"),
    `extra-experimental-features = external-builders\nexternal-builders = ${JSON.stringify(builders)}\n`,
  );
  await lab.nix.stopDaemon();
  await lab.nix.startDaemon({ NSH_CONF: lab.nshConf });
}, 180000);
afterAll(async () => {
  await lab?.cleanup();
});

const nixBuild = (args: string[]) => lab!.nix.run(["nix-build", "--store", "daemon", "--no-out-link", ...args], { timeoutMs: 150000 });

test("a chain built through nsh as external builder lands in the store, with its log", async () => {
  if (!supported) return console.log(`skipped: ${lab!.nix.nixVersion} has no external-builders`);
  const s = salt();
  const r = await nixBuild([lab!.nix.expr("chain"), "--argstr", "salt", s]);
  if (r.code !== 0) console.log(r.stderr);
  expect(r.code).toBe(0);
  const out = r.stdout.trim();
  expect(fs.readFileSync(out, "utf8").trim()).toBe(`top dep-${s}`);
  expect(r.stderr).toContain("building top");
  expect(r.stderr).toContain("on 'slurm:127.0.0.1'");
  const drv = (await lab!.nix.run(["nix-store", "-q", "--deriver", out])).stdout.trim();
  const log = await lab!.nix.run(["nix-store", "--store", "daemon", "-l", drv]);
  expect(log.stdout).toContain("building top");
  // Built on the node's store (a Slurm job), and registered locally by Nix.
  expect((await lab!.nix.run(["nix-store", "--store", lab!.nodeStore, "--check-validity", out])).code).toBe(0);
  expect((await lab!.nix.run(["nix-store", "--store", "daemon", "--verify-path", out])).code).toBe(0);
  expect(jobsOf(lab!, s).map((j) => j.state)).toEqual(["succeeded", "succeeded"]);
}, 200000);

test("a failing builder fails the build, its log shown", async () => {
  if (!supported) return;
  const s = salt();
  const script = `echo failing-${s}; exit 3`;
  const r = await nixBuild([lab!.nix.expr("slurm-job"), "--argstr", "salt", s, "--argstr", "script", script]);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toContain(`failing-${s}`);
  expect(hasStackTrace(r.stderr)).toBe(false);
  expect(jobsOf(lab!, s)[0]?.state).toBe("failed");
}, 200000);

test("a derivation the cluster does not offer fails with the reason, no job submitted", async () => {
  if (!supported) return;
  const s = salt();
  const expr = `derivation { name = "nofeat-${s}"; system = "${system}"; builder = "/bin/sh"; args = ["-c" "echo x > $out"]; requiredSystemFeatures = ["gpu"]; }`;
  const r = await nixBuild(["-E", expr]);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toContain("requires the feature 'gpu'");
  expect(jobsOf(lab!, s)).toEqual([]);
}, 200000);

test("interrupting nix-build cancels the running job", async () => {
  if (!supported) return;
  const s = salt();
  const p = Bun.spawn(["nix-build", "--store", "daemon", "--no-out-link", lab!.nix.expr("slurm-job"), "--argstr", "salt", s, "--argstr", "sleep", "60"], {
    env: lab!.nix.env,
    cwd: lab!.nix.root,
    stdio: ["ignore", "pipe", "pipe"],
  });
  try {
    const id = await jobInState(lab!, s, "RUNNING", 60000);
    expect(id).toBeDefined();
    p.kill("SIGINT");
    expect(await jobEnded(lab!, id!, 30000)).toBe("CANCELLED");
    const rec = await until(() => (jobsOf(lab!, s)[0]?.state === "cancelled" ? true : undefined), 30000);
    expect(rec).toBe(true);
  } finally {
    p.kill("SIGKILL");
  }
}, 200000);

test("Nix's timeout kills the external builder and the job is cancelled", async () => {
  if (!supported) return;
  const s = salt();
  const r = await nixBuild(["--option", "timeout", "8", lab!.nix.expr("slurm-job"), "--argstr", "salt", s, "--argstr", "sleep", "60"]);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(/timed out/);
  const id = jobsOf(lab!, s)[0]?.jobId;
  expect(id).toBeDefined();
  expect(await jobEnded(lab!, id!, 30000)).toBe("CANCELLED");
}, 200000);
