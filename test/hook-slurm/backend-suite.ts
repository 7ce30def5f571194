// The core end-to-end scenarios, run once per backend (backend-<name>.test.ts): each file starts its
// own cluster lab whose nsh.conf picks the backend (test/lab/cluster.ts), so the three run apart.
// Expected, for every backend: a derivation chain is built as Slurm jobs, its log in nix-build's
// output and `nix log`; per-derivation parameters reach the job (scontrol show job); a failing
// builder fails the build with its exit status and log; a job past its Slurm time limit fails the
// build naming the limit; interrupting nix-build ends a pending and a running job within a generous
// bound; Slurm unreachable, or the backend's tools missing, fails the build with a clear nsh error
// and no job; the job's node unreachable over ssh, or the scheduler refusing nsh's credentials,
// fails the build with a clear nsh error (backend-suite-access.ts); malformed or refused
// per-derivation attributes fail the build naming the attribute, with no job; collect-garbage and
// remote-nix-bin-dir work; `nsh doctor`, `nsh jobs` and `nsh cancel` work; a build that goes well
// shows no nsh warning. Backend-specific differences are in FLAVOURS (which attribute, which keys).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { type Backend, NSH_BIN, startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { accessScenarios, closedPort } from "./backend-suite-access.ts";
import {
  confWith, hasStackTrace, jobEnded, jobInState, jobsOf, salt, showJob, spawnNsh, squeue, until,
} from "./helpers.ts";

/** Generous for a loaded machine, yet below the 60 s builder's own end. */
const BOUND_MS = 30_000;

interface Flavour {
  /** per-derivation parameters asking for 2 CPUs and what scontrol shows for them */
  params: (s: string) => Record<string, unknown>;
  shows: Record<string, string>;
  /** parameters the allow-list refuses, and the key named */
  refused: { params: Record<string, unknown>; key: string };
  /** parameters that pass the allow-list but the backend refuses, and the words of its error */
  invalid?: { params: Record<string, unknown>; says: string };
  /** a 1-minute Slurm time limit from the derivation (slurm-native has no such constraint: scontrol sets it) */
  timeLimit?: Record<string, unknown>;
  /** nsh.conf values that leave the backend without its tools, and what the error says */
  toolsMissing?: { values: Record<string, string>; says: RegExp };
}

const FLAVOURS: Record<Backend, Flavour> = {
  slurm: {
    params: (s) => ({ comment: `nsh-test-${s}`, cpus_per_task: 2 }),
    shows: { NumCPUs: "2", "CPUs/Task": "2" },
    refused: { params: { environment: { LD_PRELOAD: "/tmp/evil.so" } }, key: "environment" },
    timeLimit: { time_limit: 1 },
  },
  "slurm-cli": {
    params: (s) => ({ comment: `nsh-test-${s}`, cpus_per_task: 2 }),
    shows: { NumCPUs: "2", "CPUs/Task": "2" },
    refused: { params: { environment: { LD_PRELOAD: "/tmp/evil.so" } }, key: "environment" },
    timeLimit: { time_limit: 1 },
    toolsMissing: { values: { "slurm-bin-dir": "/nonexistent/slurm/bin" }, says: /sbatch/ },
  },
  "slurm-native": {
    params: () => ({ cpus: 2, memPerNode: "300M" }),
    shows: { NumCPUs: "2", MinMemoryNode: "300M" },
    refused: { params: { partition: "debug" }, key: "partition" },
    invalid: { params: { memPerNode: "300M", memPerCPU: "70M" }, says: "mutually exclusive" },
    toolsMissing: { values: { "slurm-native-include-dir": "/nonexistent/include" }, says: /slurm\.h|slurm-cli/ },
  },
};

export function backendSuite(backend: Backend): void {
  const f = FLAVOURS[backend];
  let lab: ClusterLab;
  beforeAll(async () => {
    lab = await startClusterLab(`be-${backend}`, backend);
  }, 180000);
  afterAll(async () => {
    await lab?.cleanup();
  });

  const env = () => ({ ...lab.nix.env, NSH_CONF: lab.nshConf });
  const jobArgs = (s: string, o: { script?: string; params?: Record<string, unknown> | string } = {}) => {
    const params = o.params === undefined ? "none" : typeof o.params === "string" ? o.params : JSON.stringify(o.params);
    const script = o.script ? ["--argstr", "script", o.script] : [];
    return [lab.nix.expr("slurm-job"), "--argstr", "salt", s, "--argstr", "attr", lab.paramsAttr, "--argstr", "params", params, ...script];
  };
  const startBuild = (args: string[]) =>
    Bun.spawn(["nix-build", "--store", "daemon", "--option", "build-hook", NSH_BIN, "--no-out-link", ...args], {
      env: lab.nix.env,
      cwd: lab.nix.root,
      stdio: ["ignore", "pipe", "pipe"],
    });
  /** Every job Slurm knows (queued, running or recently finished) whose name mentions `s`. */
  const slurmJobsNamed = async (s: string) =>
    (await lab.slurm.run(["squeue", "-h", "-t", "all", "-o", "%i %j"])).stdout.split("\n").filter((l) => l.includes(s));
  function expectClearFailure(r: { code: number | null; stderr: string; timedOut: boolean }, expected: RegExp | string) {
    const ok = typeof expected === "string" ? r.stderr.includes(expected) : expected.test(r.stderr);
    if (r.code === 0 || !ok || hasStackTrace(r.stderr)) console.log(r.stderr);
    expect(r.timedOut).toBe(false);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/nsh: error: /);
    if (typeof expected === "string") expect(r.stderr).toContain(expected);
    else expect(r.stderr).toMatch(expected);
    expect(hasStackTrace(r.stderr)).toBe(false);
  }

  describe(`backend ${backend}`, () => {
    test("a chain of two derivations: two jobs, the log in nix-build's output and nix log, nsh jobs", async () => {
      lab.writeConf();
      const s = salt();
      const r = await lab.nixBuild([lab.nix.expr("chain"), "--argstr", "salt", s]);
      if (r.code !== 0) console.log(r.stderr);
      expect(r.code).toBe(0);
      const out = r.stdout.trim();
      expect(fs.readFileSync(out, "utf8").trim()).toBe(`top dep-${s}`);
      expect(r.stderr).toContain(`on '${lab.machine}'`);
      expect(r.stderr).toContain("building top");
      // Each scheduler call is a debugging line (nix -v…), not a warning on every build.
      expect(r.stderr).not.toContain("nsh: warning:");
      const drv = (await lab.nix.run(["nix-store", "-q", "--deriver", out])).stdout.trim();
      expect((await lab.nix.run(["nix-store", "--store", "daemon", "-l", drv])).stdout).toContain("building top");
      expect((await lab.nix.run(["nix-store", "--store", lab.nodeStore, "--check-validity", out])).code).toBe(0);
      const mine = jobsOf(lab, s);
      expect(mine.map((j) => j.state)).toEqual(["succeeded", "succeeded"]);
      for (const j of mine) expect(typeof j.phases.build).toBe("number");
      for (const j of mine) expect((await showJob(lab, j.jobId!)).JobState).toBe("COMPLETED");
    }, 180000);

    test("the per-derivation parameters reach the job (scontrol show job)", async () => {
      const s = salt();
      const r = await lab.nixBuild(jobArgs(s, { params: f.params(s) }));
      if (r.code !== 0) console.log(r.stderr);
      expect(r.code).toBe(0);
      expect(fs.readFileSync(r.stdout.trim(), "utf8")).toBe(`job ${s}\n`);
      const job = await showJob(lab, jobsOf(lab, s)[0]!.jobId!);
      for (const [k, v] of Object.entries(f.shows)) expect(job[k]).toBe(v);
    }, 120000);

    test("a builder exiting 3 fails the build with its status and log", async () => {
      const s = salt();
      const r = await lab.nixBuild(jobArgs(s, { script: `echo line-${s}; echo err-${s} >&2; exit 3` }));
      if (r.code === 0) console.log(r.stderr);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/exit(ed with)? code 3|status 3/);
      expect(r.stderr).toContain(`line-${s}`);
      expect(r.stderr).toContain(`err-${s}`);
      expect(hasStackTrace(r.stderr)).toBe(false);
      const [rec] = jobsOf(lab, s);
      expect(rec?.state).toBe("failed");
      expect(await until(async () => ((await squeue(lab)).has(rec!.jobId!) ? undefined : true), 10000)).toBe(true);
    }, 120000);

    test.each([
      ["malformed (not JSON)", "{not json"],
      ["refused by the allow-list", "refused"],
      ["refused by the backend", "invalid"],
    ])("per-derivation parameters %s: a clear error, no job", async (_what, kind) => {
      if (kind === "invalid" && !f.invalid) return;
      const s = salt();
      const params = kind === "refused" ? f.refused.params : kind === "invalid" ? f.invalid!.params : kind;
      const r = await lab.nixBuild(jobArgs(s, { params }), 60000);
      const refusedSays = `attribute ${lab.paramsAttr} sets the key '${f.refused.key}'`;
      const says = kind === "refused" ? refusedSays : kind === "invalid" ? f.invalid!.says : lab.paramsAttr;
      expectClearFailure(r, says);
      expect(r.stderr).toContain(`job-${s}.drv`);
      expect(await slurmJobsNamed(s)).toEqual([]);
      expect(jobsOf(lab, s).every((j) => j.jobId === undefined)).toBe(true);
    }, 120000);

    test.each(["RUNNING", "PENDING"] as const)("SIGINT to nix-build while the job is %s: the job ends", async (want) => {
      const s = salt();
      // A pending job: the partition is down, so the job waits (and no other test runs meanwhile).
      if (want === "PENDING") await lab.slurm.run(["scontrol", "update", "PartitionName=debug", "State=DOWN"]);
      try {
        const p = startBuild(jobArgs(s, { script: "/bin/sleep 60; echo > $out" }));
        const stderr = new Response(p.stderr).text();
        const id = await jobInState(lab, s, want);
        if (!id) {
          p.kill("SIGKILL");
          console.log(await stderr);
        }
        expect(id).toBeDefined();
        p.kill("SIGINT");
        expect(await jobEnded(lab, id!, BOUND_MS)).toBe("CANCELLED");
        await p.exited;
        expect(await until(() => (jobsOf(lab, s)[0]?.state === "cancelled" ? true : undefined), BOUND_MS)).toBe(true);
      } finally {
        if (want === "PENDING") await lab.slurm.run(["scontrol", "update", "PartitionName=debug", "State=UP"]);
      }
    }, 120000);

    test("nsh cancel ends a running build's job; nsh doctor says the setup is in place", async () => {
      const doctor = spawnNsh(["doctor"], env());
      if (doctor.exitCode !== 0) console.log(doctor.stdout.toString(), doctor.stderr.toString());
      expect(doctor.stdout.toString()).toContain("everything nsh needs is in place");
      expect(doctor.exitCode).toBe(0);
      const s = salt();
      const p = startBuild(jobArgs(s, { script: "/bin/sleep 60; echo > $out" }));
      const id = await jobInState(lab, s, "RUNNING");
      expect(id).toBeDefined();
      const c = spawnNsh(["cancel", id!], env());
      expect(c.stdout.toString()).toContain(`cancelled job ${id}`);
      expect(c.exitCode).toBe(0);
      expect(await jobEnded(lab, id!, BOUND_MS)).toBe("CANCELLED");
      expect(await p.exited).not.toBe(0);
    }, 120000);

    test("collect-garbage = true: the output is gone from the node store", async () => {
      confWith(lab, { "collect-garbage": "true" });
      try {
        const s = salt();
        const r = await lab.nixBuild(jobArgs(s));
        if (r.code !== 0) console.log(r.stderr);
        expect(r.code).toBe(0);
        const out = r.stdout.trim();
        const validOnNode = async () =>
          (await lab.nix.run(["nix-store", "--store", lab.nodeStore, "--check-validity", out])).code === 0;
        expect(await until(async () => ((await validOnNode()) ? undefined : true), 15000, 200)).toBe(true);
      } finally {
        lab.writeConf();
      }
    }, 120000);

    test("no nix on the job's PATH: remote-nix-bin-dir = /usr/bin makes it work", async () => {
      const noNixOnPath = `NIX_CONF_DIR=${lab.nix.confDir} PATH=/nonexistent`;
      confWith(lab, { "job-environment": noNixOnPath, "remote-nix-bin-dir": "/usr/bin" });
      try {
        const s = salt();
        const r = await lab.nixBuild(jobArgs(s));
        if (r.code !== 0) console.log(r.stderr);
        expect(r.code).toBe(0);
        expect(fs.readFileSync(r.stdout.trim(), "utf8")).toBe(`job ${s}\n`);
      } finally {
        lab.writeConf();
      }
    }, 120000);

    test.skipIf(!f.toolsMissing)("the backend's tools missing: a clear error, no job", async () => {
      confWith(lab, f.toolsMissing!.values);
      try {
        const s = salt();
        const r = await lab.nixBuild(jobArgs(s), 90000);
        expectClearFailure(r, f.toolsMissing!.says);
        expect(await slurmJobsNamed(s)).toEqual([]);
      } finally {
        lab.writeConf();
      }
    }, 120000);

    test("Slurm unreachable: a clear error, no hang", async () => {
      // The REST backend: a port nobody listens on; the others: a slurm.conf naming one as slurmctld's.
      const closed = String(await closedPort());
      if (backend === "slurm") confWith(lab, { "slurm-api-port": closed });
      else {
        const conf = path.join(lab.nix.root, "unreachable-slurm.conf");
        const text = fs.readFileSync(lab.slurm.confFile, "utf8");
        fs.writeFileSync(conf, text.replace(/^SlurmctldPort=.*$/m, `SlurmctldPort=${closed}`));
        confWith(lab, { "slurm-conf": conf });
      }
      try {
        const s = salt();
        const r = await lab.nixBuild(jobArgs(s), 110000);
        expectClearFailure(r, /reach|contact|connect/i);
        expect(await slurmJobsNamed(s)).toEqual([]);
      } finally {
        lab.writeConf();
      }
    }, 120000);

    test("a job past its 1-minute Slurm time limit fails the build naming the limit", async () => {
      const s = salt();
      const params = f.timeLimit ? { params: f.timeLimit } : {};
      const build = lab.nixBuild(jobArgs(s, { script: "/bin/sleep 300; echo > $out", ...params }), 150000);
      // slurm-native has no time constraint per derivation: the running job's limit is lowered instead.
      if (!f.timeLimit) {
        const running = await jobInState(lab, s, "RUNNING");
        expect(running).toBeDefined();
        await lab.slurm.run(["scontrol", "update", `JobId=${running}`, "TimeLimit=1"]);
      }
      const r = await build;
      const id = jobsOf(lab, s)[0]?.jobId;
      if (!r.stderr.includes("time limit")) console.log(r.stderr);
      expect(r.timedOut).toBe(false);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`job ${id} reached its Slurm time limit of 1 min`);
      expect((await showJob(lab, id!)).JobState).toBe("TIMEOUT");
    }, 160000);

    // The job's node unreachable over ssh, and the scheduler refusing nsh's credentials: backend-suite-access.ts.
    accessScenarios({
      backend, lab: () => lab, jobArgs: (s) => jobArgs(s), expectClearFailure, slurmJobsNamed, boundMs: BOUND_MS,
    });
  });
}

