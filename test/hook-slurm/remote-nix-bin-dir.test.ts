// Expected: when the job's PATH has no Nix (job-environment PATH=/nonexistent), the build fails at
// once with a clear error naming the node and suggesting remote-nix-bin-dir, and the job is
// cancelled; `remote-nix-bin-dir = /usr/bin` makes the same build work. A remote-nix-bin-dir that
// holds no nix-store is named in the error.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import { startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { confWith, hasStackTrace, jobState, jobsOf, salt, until } from "./helpers.ts";

let lab: ClusterLab;
beforeAll(async () => {
  lab = await startClusterLab("nixbindir");
}, 120000);
afterAll(async () => {
  await lab?.cleanup();
});

const node = os.hostname().split(".")[0]!;
const noNixOnPath = () => `NIX_CONF_DIR=${lab.nix.confDir} PATH=/nonexistent`;
const build = (s: string) => lab.nixBuild([lab.nix.expr("slurm-job"), "--argstr", "salt", s], 60000);

async function expectCancelled(s: string) {
  const [rec] = jobsOf(lab, s);
  expect(rec?.state).toBe("failed");
  const st = await until(async () => {
    const v = await jobState(lab, rec!.jobId!);
    return v === "CANCELLED" || v === "COMPLETED" || v === "FAILED" ? v : undefined;
  }, 10000);
  expect(st).toBe("CANCELLED");
}

test("no nix on the job's PATH: a clear error suggesting remote-nix-bin-dir", async () => {
  confWith(lab, { "job-environment": noNixOnPath() });
  try {
    const s = salt();
    const t0 = performance.now();
    const r = await build(s);
    console.log(`no nix on PATH: nix-build failed after ${Math.round(performance.now() - t0)} ms`);
    if (r.code === 0 || !r.stderr.includes("remote-nix-bin-dir")) console.log(r.stderr);
    expect(r.timedOut).toBe(false);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`nix-store is not on the job's PATH on node ${node} (PATH=/nonexistent)`);
    expect(r.stderr).toContain("set remote-nix-bin-dir in nsh.conf");
    expect(hasStackTrace(r.stderr)).toBe(false);
    await expectCancelled(s);
  } finally {
    lab.writeConf();
  }
}, 60000);

test("remote-nix-bin-dir = /usr/bin makes it work", async () => {
  confWith(lab, { "job-environment": noNixOnPath(), "remote-nix-bin-dir": "/usr/bin" });
  try {
    const s = salt();
    const r = await build(s);
    if (r.code !== 0) console.log(r.stderr);
    expect(r.code).toBe(0);
    expect(fs.readFileSync(r.stdout.trim(), "utf8")).toBe(`job ${s}\n`);
    expect(jobsOf(lab, s)[0]?.state).toBe("succeeded");
  } finally {
    lab.writeConf();
  }
}, 60000);

test("a remote-nix-bin-dir without nix-store is named", async () => {
  confWith(lab, { "remote-nix-bin-dir": "/nonexistent-nix/bin" });
  try {
    const s = salt();
    const r = await build(s);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`there is no executable /nonexistent-nix/bin/nix-store on node ${node}`);
    expect(hasStackTrace(r.stderr)).toBe(false);
    await expectCancelled(s);
  } finally {
    lab.writeConf();
  }
}, 60000);
