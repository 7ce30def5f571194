// End to end on the lab cluster (real Nix 2.8 daemon with nsh as build hook, real Slurm 22.05 with
// slurmrestd and JWT, real sshd standing for the node): a chain of derivations that require the
// `nsh` feature is built as Slurm jobs, the build log reaches nix-build's output and `nix log`,
// extraSlurmParams reach the job, and `nsh jobs` shows the phases.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { SUPPORTED_VERSIONS } from "../../src/schedulers/slurm-rest-shapes.ts";
import { startClusterLab, NSH_BIN, type ClusterLab } from "../lab/cluster.ts";
import { nshArgv } from "./helpers.ts";

let lab: ClusterLab;
beforeAll(async () => {
  lab = await startClusterLab("e2e");
}, 120000);
afterAll(async () => {
  await lab?.cleanup();
});

const salt = () => `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

test("a chain of two derivations is built as two Slurm jobs", async () => {
  const s = salt();
  const r = await lab.nixBuild([lab.nix.expr("chain"), "--argstr", "salt", s]);
  if (r.code !== 0) console.log(r.stderr);
  expect(r.code).toBe(0);
  const out = r.stdout.trim();
  expect(fs.readFileSync(out, "utf8").trim()).toBe(`top dep-${s}`);
  expect(r.stderr).toContain("on 'slurm:127.0.0.1'");
  // The builder's own output streamed back from the job.
  expect(r.stderr).toContain(`building top`);
  const drv = (await lab.nix.run(["nix-store", "-q", "--deriver", out])).stdout.trim();
  const log = await lab.nix.run(["nix-store", "--store", "daemon", "-l", drv]);
  expect(log.stdout).toContain("building top");
  // Built on the node's store, not locally.
  expect((await lab.nix.run(["nix-store", "--store", lab.nodeStore, "--check-validity", out])).code).toBe(0);
  const jobs = Bun.spawnSync([NSH_BIN, "jobs", "--all", "--json"], { env: { ...lab.nix.env, NSH_CONF: lab.nshConf } });
  const recs = jobs.stdout.toString().trim().split("\n").map((l) => JSON.parse(l));
  const mine = recs.filter((j) => j.drv.includes(s));
  expect(mine.map((j) => j.state)).toEqual(["succeeded", "succeeded"]);
  for (const j of mine) for (const p of ["queue", "upload", "build", "download"]) expect(typeof j.phases[p]).toBe("number");
}, 180000);

test("nix build (the new CLI) through the hook as well", async () => {
  const s = salt();
  const r = await lab.nix.run(["nix", "build", "--store", "daemon", "--option", "build-hook", NSH_BIN, "--no-link", "--json", "-f", lab.nix.expr("chain"), "--argstr", "salt", s], { timeoutMs: 120000 });
  if (r.code !== 0) console.log(r.stderr);
  expect(r.code).toBe(0);
  const out = JSON.parse(r.stdout)[0].outputs.out as string;
  expect(fs.readFileSync(out, "utf8").trim()).toBe(`top dep-${s}`);
}, 180000);

test("nsh doctor checks the whole setup and says it is in place", async () => {
  const env = { ...lab.nix.env, NSH_CONF: lab.nshConf };
  const p = Bun.spawn(nshArgv(["doctor"], env), { env, stdio: ["ignore", "pipe", "pipe"] });
  const [out, code] = [await new Response(p.stdout).text(), await p.exited];
  if (lab.backend === "slurm") {
    // the newest API version slurmrestd serves and nsh knows: v0.0.38 on 22.05
    const api = [...SUPPORTED_VERSIONS].reverse().find((v) => lab.slurm.apiVersions.includes(v));
    expect(out).toContain(`API ${api}`);
  }
  expect(out).toContain("answers the serve protocol");
  expect(out).toContain("everything nsh needs is in place");
  expect(code).toBe(0);
});

test("nsh doctor names what is wrong: a bad token", async () => {
  const bad = path.join(lab.nix.root, "bad.jwt");
  fs.writeFileSync(bad, "not-a-token\n", { mode: 0o600 });
  const conf = path.join(lab.nix.root, "doctor-bad.conf");
  fs.writeFileSync(conf, fs.readFileSync(lab.nshConf, "utf8").replace(/slurm-jwt-token-file = .*/, `slurm-jwt-token-file = ${bad}`));
  const env = { ...lab.nix.env, NSH_CONF: conf };
  const p = Bun.spawn(nshArgv(["doctor"], env), { env, stdio: ["ignore", "pipe", "pipe"] });
  const [out, code] = [await new Response(p.stdout).text(), await p.exited];
  expect(code).toBe(1);
  expect(out).toMatch(/FAIL\s+slurmrestd: .*(token|JWT)/i);
  expect(out).not.toContain("not-a-token");
});
