// nsh as Nix's external builder, run once per Slurm backend (external-builder-<backend>.test.ts):
// each file starts its own cluster lab whose nsh.conf picks the backend (test/lab/cluster.ts).
// Expected, for every backend, with Nix ≥ 2.32 (run with NSH_LAB_SUITE=sid: Nix 2.34.8, Slurm 26.05)
// and nix.conf `external-builders = [{systems, program = nsh, args = ["external-builder"]}]` plus the
// experimental feature, and no build hook: Nix hands each build of a listed system to
// `nsh external-builder`, which builds it as a Slurm job exactly like the hook: the outputs land in
// the local store (built on the node's store), the builder's log is in nix-build's output and
// `nix-store -l`, `nsh jobs` records the job; a failing builder fails the build with its log; a
// derivation needing a feature the cluster lacks fails with the reason and no job; interrupting
// nix-build (Nix SIGKILLs the program's group) cancels the job through the reaper, and so does
// Nix's own `timeout`. On an older Nix (2.8, 2.26) every test skips.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { type Backend, type ClusterLab, NSH_BIN, startClusterLab } from "../lab/cluster.ts";
import { hasStackTrace, jobEnded, jobInState, jobsOf, salt, until } from "./helpers.ts";

/** Generous for a loaded machine, yet below the 60 s builder's own end. */
const BOUND_MS = 30_000;
export const SYSTEM = `${process.arch === "arm64" ? "aarch64" : "x86_64"}-linux`;

export interface ExternalBuilderLab {
  lab: ClusterLab;
  /** false on a Nix without external-builders (< 2.32): the tests skip */
  supported: boolean;
  /** nix-build through the daemon (with the hook too when `withHook`) */
  nixBuild(args: string[], timeoutMs?: number): ReturnType<ClusterLab["nix"]["run"]>;
  /** nix-build running in the background (for interrupting it) */
  spawnBuild(args: string[]): Bun.Subprocess<"ignore", "pipe", "pipe">;
  /** the slurm-job expression's arguments, with no scheduler parameters (each backend has its own attribute) */
  jobArgs(s: string, o?: { script?: string; sleep?: string }): string[];
}

/**
 * A cluster lab whose daemon lists nsh in `external-builders`; with `withHook` nix-build also
 * passes `--option build-hook nsh`, so both are configured. The cluster offers the lab
 * expressions' feature "nsh"; Nix itself does not (no local build could take them).
 */
export async function startExternalBuilderLab(
  name: string,
  backend: Backend,
  withHook = false,
): Promise<ExternalBuilderLab> {
  const lab = await startClusterLab(name, backend);
  const [major = 0, minor = 0] = lab.nix.nixVersionNumbers;
  const supported = major > 2 || (major === 2 && minor >= 32);
  if (supported) {
    lab.writeConf("system-features = nsh");
    const builders = [{ systems: [SYSTEM], program: NSH_BIN, args: ["external-builder"] }];
    fs.appendFileSync(
      path.join(lab.nix.confDir, "nix.conf"),
      `extra-experimental-features = external-builders\nexternal-builders = ${JSON.stringify(builders)}\n`,
    );
    await lab.nix.stopDaemon();
    await lab.nix.startDaemon({ NSH_CONF: lab.nshConf });
  }
  const hook = withHook ? ["--option", "build-hook", NSH_BIN] : [];
  const argv = (args: string[]) => ["nix-build", "--store", "daemon", ...hook, "--no-out-link", ...args];
  return {
    lab,
    supported,
    nixBuild: (args, timeoutMs = 150_000) => lab.nix.run(argv(args), { timeoutMs }),
    spawnBuild: (args) =>
      Bun.spawn(argv(args), { env: lab.nix.env, cwd: lab.nix.root, stdio: ["ignore", "pipe", "pipe"] }),
    jobArgs: (s, o = {}) => [
      lab.nix.expr("slurm-job"), "--argstr", "salt", s, "--argstr", "params", "none",
      ...(o.script ? ["--argstr", "script", o.script] : []),
      ...(o.sleep ? ["--argstr", "sleep", o.sleep] : []),
    ],
  };
}

export function externalBuilderSuite(backend: Backend): void {
  let x: ExternalBuilderLab;
  beforeAll(async () => {
    x = await startExternalBuilderLab(`xb-${backend}`, backend);
  }, 180_000);
  afterAll(async () => {
    await x?.lab.cleanup();
  });
  const skipped = () => {
    if (x.supported) return false;
    console.log(`skipped: ${x.lab.nix.nixVersion} has no external-builders`);
    return true;
  };

  describe(`external builder, backend ${backend}`, () => {
    test("a chain lands in the store as two jobs, its log in nix-build's output and nix log", async () => {
      if (skipped()) return;
      const { lab } = x;
      const s = salt();
      const r = await x.nixBuild([lab.nix.expr("chain"), "--argstr", "salt", s]);
      if (r.code !== 0) console.log(r.stderr);
      expect(r.code).toBe(0);
      const out = r.stdout.trim();
      expect(fs.readFileSync(out, "utf8").trim()).toBe(`top dep-${s}`);
      expect(r.stderr).toContain("building top");
      expect(r.stderr).toContain(`on '${lab.machine}'`);
      expect(r.stderr).not.toContain("nsh: warning:");
      const drv = (await lab.nix.run(["nix-store", "-q", "--deriver", out])).stdout.trim();
      expect((await lab.nix.run(["nix-store", "--store", "daemon", "-l", drv])).stdout).toContain("building top");
      // Built on the node's store (a Slurm job), and registered locally by Nix.
      expect((await lab.nix.run(["nix-store", "--store", lab.nodeStore, "--check-validity", out])).code).toBe(0);
      expect((await lab.nix.run(["nix-store", "--store", "daemon", "--verify-path", out])).code).toBe(0);
      expect(jobsOf(lab, s).map((j) => j.state)).toEqual(["succeeded", "succeeded"]);
    }, 200_000);

    test("a failing builder fails the build, its log shown", async () => {
      if (skipped()) return;
      const s = salt();
      const r = await x.nixBuild(x.jobArgs(s, { script: `echo failing-${s}; exit 3` }));
      if (r.code === 0) console.log(r.stderr);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(`failing-${s}`);
      expect(hasStackTrace(r.stderr)).toBe(false);
      expect(jobsOf(x.lab, s)[0]?.state).toBe("failed");
    }, 200_000);

    test("a derivation needing a feature the cluster lacks fails with the reason, no job", async () => {
      if (skipped()) return;
      const s = salt();
      const expr = `derivation { name = "nofeat-${s}"; system = "${SYSTEM}"; builder = "/bin/sh"; ` +
        `args = ["-c" "echo x > $out"]; requiredSystemFeatures = ["gpu"]; }`;
      const r = await x.nixBuild(["-E", expr]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain("requires the feature 'gpu'");
      expect(hasStackTrace(r.stderr)).toBe(false);
      expect(jobsOf(x.lab, s)).toEqual([]);
    }, 200_000);

    test("interrupting nix-build cancels the running job", async () => {
      if (skipped()) return;
      const { lab } = x;
      const s = salt();
      const p = x.spawnBuild(x.jobArgs(s, { sleep: "60" }));
      try {
        const id = await jobInState(lab, s, "RUNNING", 60_000);
        expect(id).toBeDefined();
        p.kill("SIGINT");
        expect(await jobEnded(lab, id!, BOUND_MS)).toBe("CANCELLED");
        expect(await until(() => (jobsOf(lab, s)[0]?.state === "cancelled" ? true : undefined), BOUND_MS)).toBe(true);
      } finally {
        p.kill("SIGKILL");
      }
    }, 200_000);

    test("Nix's timeout kills the external builder and the job is cancelled", async () => {
      if (skipped()) return;
      const s = salt();
      const r = await x.nixBuild(["--option", "timeout", "8", ...x.jobArgs(s, { sleep: "60" })]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/timed out/);
      const id = jobsOf(x.lab, s)[0]?.jobId;
      expect(id).toBeDefined();
      expect(await jobEnded(x.lab, id!, BOUND_MS)).toBe("CANCELLED");
    }, 200_000);
  });
}
