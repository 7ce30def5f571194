// Expected: a broken setup fails the build at once with a clear nsh message in nix-build's stderr
// (no hang, no JavaScript stack trace):
//   - a garbage JWT in the token file, or a well-formed one Slurm does not accept: "authentication
//     failed", and the token's text appears nowhere in the output;
//   - a malformed extraSlurmParams (not JSON, or not a JSON object): an error naming the derivation
//     and the attribute, and no job is submitted;
//   - extraSlurmParams Slurm refuses (an unknown partition): Slurm's reason;
//   - the job's node unreachable over ssh (its name maps to a closed port): the message names the
//     node, and the job is cancelled;
//   - slurmrestd down (killed; last, the lab's slurmrestd does not come back): "not reachable".
// A setup that is missing something (no nsh.conf, no slurm-state-dir, no token) is not broken but
// incomplete: the hook declines instead (test/hook/unconfigured-*.test.ts); a key extraSlurmParams
// may not set is refused like a malformed attribute (test/hook-slurm/refused-params.test.ts).
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { mintSlurmJwt } from "../lab/slurm-conf.ts";
import { confWith, hasStackTrace, jobState, jobsOf, salt, until } from "./helpers.ts";

let lab: ClusterLab;
let tokenFile: string;
let goodToken: string;
beforeAll(async () => {
  lab = await startClusterLab("badsetup");
  tokenFile = path.join(lab.nix.root, "slurm.jwt");
  goodToken = fs.readFileSync(tokenFile, "utf8");
}, 120000);
afterAll(async () => {
  await lab?.cleanup();
});

const build = (s: string, more: string[] = []) => lab.nixBuild([lab.nix.expr("slurm-job"), "--argstr", "salt", s, ...more], 60000);

/** The build failed quickly, with `expected` in nsh's words and no stack trace. */
function expectClearFailure(r: Awaited<ReturnType<typeof build>>, expected: RegExp | string) {
  if (process.env.SHOW) console.log(r.stderr);
  if (r.code === 0 || !(typeof expected === "string" ? r.stderr.includes(expected) : expected.test(r.stderr)) || hasStackTrace(r.stderr)) console.log(r.stderr);
  expect(r.timedOut).toBe(false);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(/nsh: error: /);
  if (typeof expected === "string") expect(r.stderr).toContain(expected);
  else expect(r.stderr).toMatch(expected);
  expect(hasStackTrace(r.stderr)).toBe(false);
}

async function allJobIds(): Promise<string[]> {
  const r = await lab.slurm.run(["squeue", "-h", "-t", "all", "-o", "%i"]);
  return r.stdout.trim().split("\n").filter(Boolean);
}

test("a garbage JWT: authentication failed, the token is not shown", async () => {
  const s = salt();
  const garbage = `garbage-token-${s}`;
  fs.writeFileSync(tokenFile, `${garbage}\n`, { mode: 0o600 });
  try {
    const r = await build(s);
    expectClearFailure(r, "authentication failed");
    expect(r.stderr).not.toContain(garbage);
    expect(jobsOf(lab, s).every((j) => j.jobId === undefined)).toBe(true);
  } finally {
    fs.writeFileSync(tokenFile, goodToken, { mode: 0o600 });
  }
}, 60000);

test("a well-formed JWT signed with another key: authentication failed, the token is not shown", async () => {
  const s = salt();
  const forged = mintSlurmJwt(Buffer.from(`not-the-key-${s}`), "root", 3600);
  fs.writeFileSync(tokenFile, `${forged}\n`, { mode: 0o600 });
  try {
    const r = await build(s);
    expectClearFailure(r, "authentication failed");
    for (const part of forged.split(".")) expect(r.stderr).not.toContain(part);
  } finally {
    fs.writeFileSync(tokenFile, goodToken, { mode: 0o600 });
  }
}, 60000);

test("extraSlurmParams that is not JSON: the derivation and the attribute are named, no job", async () => {
  const s = salt();
  const before = await allJobIds();
  const r = await build(s, ["--argstr", "params", "{cpus_per_task: 2"]);
  expectClearFailure(r, "extraSlurmParams");
  expect(r.stderr).toMatch(new RegExp(`job-${s}\\.drv[^\\n]*extraSlurmParams is not valid JSON`));
  expect(await allJobIds()).toEqual(before);
  expect(jobsOf(lab, s).every((j) => j.jobId === undefined)).toBe(true);
}, 60000);

test("extraSlurmParams that is a JSON array: must be a JSON object, no job", async () => {
  const s = salt();
  const before = await allJobIds();
  const r = await build(s, ["--argstr", "params", "[2]"]);
  expectClearFailure(r, /extraSlurmParams must be a JSON object/);
  expect(r.stderr).toContain(`job-${s}.drv`);
  expect(await allJobIds()).toEqual(before);
}, 60000);

test("extraSlurmParams Slurm refuses: Slurm's reason", async () => {
  const s = salt();
  const r = await build(s, ["--argstr", "params", `{"partition": "nope-${s}"}`]);
  expectClearFailure(r, /Slurm refused the job.*Invalid partition name/);
}, 60000);

test("the node unreachable over ssh: the node is named, the job is cancelled", async () => {
  const s = salt();
  // A port nobody listens on.
  const srv = net.createServer().listen(0, "127.0.0.1");
  await new Promise((r) => srv.once("listening", r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  const node = os.hostname().split(".")[0]!;
  const config = path.join(lab.nix.root, `unreachable-${s}.ssh_config`);
  // ssh takes the first value it finds: the node's block comes first.
  fs.writeFileSync(config, `Host ${node}\n  HostName 127.0.0.1\n  Port ${port}\n\n${fs.readFileSync(lab.sshConfig, "utf8").replace(` ${node} `, " ")}`);
  confWith(lab, { "ssh-config": config });
  try {
    const t0 = performance.now();
    const r = await build(s);
    console.log(`unreachable node: nix-build failed after ${Math.round(performance.now() - t0)} ms`);
    expectClearFailure(r, new RegExp(`node ${node}\\b`));
    expect(r.stderr).toMatch(/ECONNREFUSED|refused/i);
    const [rec] = jobsOf(lab, s);
    expect(rec?.jobId).toBeDefined();
    expect(rec?.state).toBe("failed");
    const st = await until(async () => {
      const v = await jobState(lab, rec!.jobId!);
      return v === "CANCELLED" || v === "COMPLETED" ? v : undefined;
    }, 10000);
    expect(st).toBe("CANCELLED");
  } finally {
    lab.writeConf();
  }
}, 60000);

test("slurmrestd down: not reachable", async () => {
  const s = salt();
  process.kill(lab.slurm.pids.slurmrestd, "SIGKILL");
  await until(async () => {
    const ok = await fetch(`${lab.slurm.restUrl}/openapi/v3`).then(() => true, () => false);
    return ok ? undefined : true;
  }, 5000);
  const t0 = performance.now();
  const r = await build(s);
  console.log(`slurmrestd down: nix-build failed after ${Math.round(performance.now() - t0)} ms`);
  expectClearFailure(r, /slurmrestd not reachable at 127\.0\.0\.1:\d+/);
}, 60000);
