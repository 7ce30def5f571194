// Self-test of the lab's Debian roots (test/lab/roots.ts): for each suite named in NSH_LAB_ROOTS
// (e.g. NSH_LAB_ROOTS=trixie,sid; the roots are built on first use, ~2 min each), the Nix lab's
// daemon from that root builds a trivial derivation, and the Slurm lab from that root runs a job
// while its slurmrestd answers; afterwards nothing the labs started is left running.
// Without NSH_LAB_ROOTS the test skips (printing why), so the default suite builds no root.
import { afterAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import { startNixLab, type NixLab } from "../lab/nix.ts";
import { findByMarker, isAlive, mountNamespace, waitUntil } from "../lab/proc.ts";
import { ensureRoot, type RootSuite, SUITES } from "../lab/roots.ts";
import { startSlurmLab, waitJobState, type SlurmLab } from "../lab/slurm.ts";

const wanted = (process.env.NSH_LAB_ROOTS ?? "")
  .split(/[,\s]+/)
  .filter(Boolean)
  .map((s) => {
    if (!(SUITES as readonly string[]).includes(s) || s === "bookworm") {
      throw new Error(`NSH_LAB_ROOTS: ${JSON.stringify(s)} is not a root suite (trixie, sid)`);
    }
    return s as RootSuite;
  });
if (wanted.length === 0) console.log("[roots] skipped: set NSH_LAB_ROOTS=trixie,sid to build and test the roots");

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

for (const suite of wanted) {
  describe(`root ${suite}`, () => {
    test(`builds (cached) and reports its versions`, async () => {
      const root = await ensureRoot(suite);
      console.log(
        `[roots] ${suite}: ${root.nixVersion}, ${root.slurmVersion}` +
          (root.builtMs !== undefined ? `, built in ${Math.round(root.builtMs / 1000)} s` : " (cached)"),
      );
      expect(root.nixVersion).toMatch(/^nix \(Nix\) \d+\.\d+/);
      expect(root.slurmVersion).toMatch(/\d+\.\d+\.\d+/);
    }, 1800_000);

    test(`the Nix lab's daemon builds a derivation with the root's Nix`, async () => {
      const root = await ensureRoot(suite);
      let lab: NixLab | undefined = await startNixLab({ name: `root-${suite}`, daemon: true, suite });
      cleanups.push(() => lab?.cleanup() ?? Promise.resolve());
      expect(lab.nixVersion).toBe(root.nixVersion);
      // the client and the daemon are the root's: both report its version
      const v = await lab.run(["nix-store", "--version"]);
      expect(v.stdout.trim().split(" ").pop()).toBe(root.nixVersion.split(" ").pop());
      const salt = `${suite}-${Date.now()}`;
      const trivial = [lab.expr("trivial"), "--argstr", "salt", salt];
      const r = await lab.run(["nix-build", "--store", "daemon", "--no-out-link", ...trivial]);
      expect(r.code, r.stderr).toBe(0);
      const out = r.stdout.trim().split("\n").pop()!;
      expect(out.startsWith(`${lab.storeDir}/`)).toBe(true);
      expect(fs.readFileSync(out, "utf8")).toBe(`hi ${salt}\n`);
      const daemonPid = lab.daemonPid!;
      const labRoot = lab.root;
      await lab.cleanup();
      lab = undefined;
      expect(isAlive(daemonPid)).toBe(false);
      expect(findByMarker(labRoot)).toEqual([]);
      expect(fs.existsSync(labRoot)).toBe(false);
    }, 300_000);

    test(`the Slurm lab runs a job and slurmrestd answers`, async () => {
      const root = await ensureRoot(suite);
      let lab: SlurmLab | undefined = await startSlurmLab({ name: `root-${suite}`, suite });
      cleanups.push(() => lab?.cleanup() ?? Promise.resolve());
      expect(lab.slurmVersion).toBe(root.slurmVersion);
      console.log(`[roots] ${suite}: ${lab.slurmVersion} slurmrestd serves ${lab.apiVersions.join(", ")}`);
      const sv = await lab.run(["sbatch", "--version"]);
      expect(sv.stdout.trim().split(/\s+/).pop()).toBe(root.slurmVersion.split(/\s+/).pop());
      const sub = await lab.run(["sbatch", "--parsable", "-o", `${lab.jobsDir}/%j.out`, "--wrap", "echo job-ran"]);
      expect(sub.code, sub.stderr).toBe(0);
      const jobId = sub.stdout.trim().split(";")[0]!;
      expect(await waitJobState(lab, jobId, ["COMPLETED", "FAILED", "CANCELLED"], 60_000)).toBe("COMPLETED");
      expect(fs.readFileSync(`${lab.jobsDir}/${jobId}.out`, "utf8")).toBe("job-ran\n");
      const ping = await lab.rest("GET", `/slurm/${lab.apiVersion}/ping`);
      expect(ping.status).toBe(200);
      // a job still running at cleanup: its slurmstepd (no marker in its environment from 24.11 on) goes too
      const busy = await lab.run(["sbatch", "--parsable", "-o", "/dev/null", "--wrap", "sleep 301"]);
      expect(await waitJobState(lab, busy.stdout.trim().split(";")[0]!, ["RUNNING"], 60_000)).toBe("RUNNING");
      const pids = Object.values(lab.pids);
      const namespaces = new Set(pids.map((p) => mountNamespace(p)));
      const labRoot = lab.root;
      await lab.cleanup();
      lab = undefined;
      expect(pids.filter(isAlive)).toEqual([]);
      expect(findByMarker(labRoot)).toEqual([]);
      const inLabNamespaces = (): number[] =>
        fs
          .readdirSync("/proc")
          .filter((d) => /^\d+$/.test(d) && namespaces.has(mountNamespace(d)))
          .map(Number)
          .filter(isAlive);
      // (a killed process can take a moment to be reaped)
      await waitUntil(() => inLabNamespaces().length === 0, 5000);
      expect(inLabNamespaces()).toEqual([]);
    }, 300_000);
  });
}

test.skipIf(wanted.length > 0)("roots: not asked for (NSH_LAB_ROOTS unset)", () => undefined);
