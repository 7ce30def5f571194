// Expected: a builder that prints lines and exits 1 inside its Slurm job makes nix-build fail
// with the builder's failure reported (exit code 1 named) and the tail of its log shown; the
// lines are in nix-build's stderr and in `nix-store -l` for the .drv; `nsh jobs --all --json`
// records the job as failed, and no job of it is left in squeue.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { hasStackTrace, jobsOf, salt, squeue, until } from "./helpers.ts";

let lab: ClusterLab;
beforeAll(async () => {
  lab = await startClusterLab("failing");
}, 120000);
afterAll(async () => {
  await lab?.cleanup();
});

test("a builder exiting 1 fails nix-build with its log tail", async () => {
  const s = salt();
  const script = `for i in 1 2 3 4 5; do echo line-$i-${s}; done; echo to-stderr-${s} >&2; exit 1`;
  const t0 = performance.now();
  const r = await lab.nixBuild([lab.nix.expr("slurm-job"), "--argstr", "salt", s, "--argstr", "script", script]);
  if (r.code === 0 || !r.stderr.includes(`line-5-${s}`)) console.log(r.stderr);
  console.log(`failing build: nix-build exited ${r.code} after ${Math.round(performance.now() - t0)} ms`);
  expect(r.code).not.toBe(0);
  expect(r.timedOut).toBe(false);
  // The builder's exit is reported, with the log's last lines.
  expect(r.stderr).toMatch(/exit(ed with)? code 1|status 1/);
  for (let i = 1; i <= 5; i++) expect(r.stderr).toContain(`line-${i}-${s}`);
  expect(r.stderr).toContain(`to-stderr-${s}`);
  expect(hasStackTrace(r.stderr)).toBe(false);
  // `nix-store -l` keeps the log.
  const drv = (await lab.nix.run(["nix-instantiate", lab.nix.expr("slurm-job"), "--argstr", "salt", s, "--argstr", "script", script])).stdout.trim();
  const log = await lab.nix.run(["nix-store", "--store", "daemon", "-l", drv]);
  for (let i = 1; i <= 5; i++) expect(log.stdout).toContain(`line-${i}-${s}`);
  // nsh remembers the job as failed; Slurm has nothing of it left queued or running.
  const [rec] = jobsOf(lab, s);
  expect(rec?.state).toBe("failed");
  expect(rec?.jobId).toBeDefined();
  const gone = await until(async () => ((await squeue(lab)).has(rec!.jobId!) ? undefined : true), 10000);
  expect(gone).toBe(true);
}, 120000);
