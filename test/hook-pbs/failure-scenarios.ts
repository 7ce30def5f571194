// The failure scenarios every PBS backend runs (fail-*.test.ts, one file per backend), on a lab of their
// own (test/hook-pbs/lab.ts) whose queue admits only the PBS user (acl_users), as a site's would.
// Each scenario states what the user must see; "no job" means PBS has none of the build's jobs queued
// or running afterwards and `nsh jobs` recorded none.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { hasStackTrace, salt } from "../hook-slurm/helpers.ts";
import { type PbsHookLab, type PbsKind, startPbsHookLab } from "./lab.ts";
import { jobGone, jobsOf } from "./scenarios.ts";

interface Ran {
  code: number | null;
  stderr: string;
  timedOut: boolean;
}

/** nix-build failed with an nsh error saying `expected`, in bounded time, without a stack trace. */
function expectClearFailure(r: Ran, expected: RegExp | string): void {
  const ok = typeof expected === "string" ? r.stderr.includes(expected) : expected.test(r.stderr);
  if (r.code === 0 || !ok || hasStackTrace(r.stderr)) console.log(r.stderr);
  expect(r.timedOut).toBe(false);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(/nsh: error: /);
  if (typeof expected === "string") expect(r.stderr).toContain(expected);
  else expect(r.stderr).toMatch(expected);
  expect(hasStackTrace(r.stderr)).toBe(false);
}

/** A loopback TCP port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = server.port;
  server.stop(true);
  return port;
}

export function failureScenarios(kind: PbsKind): void {
  let lab: PbsHookLab;
  const userSetting = kind === "pbs" ? "pbs-user" : "pbs-cli-user";
  beforeAll(async () => {
    lab = await startPbsHookLab(kind, `fail-${kind}`);
    for (const c of ["set queue workq acl_user_enable = True", `set queue workq acl_users = ${lab.pbs.user.name}`]) {
      const r = await lab.pbs.qmgr(c);
      if (r.code !== 0) throw new Error(`qmgr -c '${c}': ${r.stderr}`);
    }
  }, 60 * 60_000);
  afterAll(async () => {
    await lab?.cleanup();
  });

  const jobArgs = (s: string, o: { resources?: string; script?: string; sleep?: string } = {}) => [
    lab.nix.expr("pbs-job"), "--argstr", "salt", s,
    ...(o.resources === undefined ? [] : ["--argstr", "resources", o.resources]),
    ...(o.script === undefined ? [] : ["--argstr", "script", o.script]),
    ...(o.sleep === undefined ? [] : ["--argstr", "sleep", o.sleep]),
  ];
  /** Neither PBS nor `nsh jobs` has a job of the build salted `s` (`before`: PBS's jobs before it). */
  async function expectNoJob(s: string, before: Map<string, string>): Promise<void> {
    expect((await jobsOf(lab, s)).filter((j) => j.jobId)).toEqual([]);
    expect([...(await lab.liveJobs()).keys()].filter((id) => !before.has(id))).toEqual([]);
  }

  // Expected: a build whose job outlives its walltime (1 min, from pbsResources) is ended by PBS; nix-build
  // fails with an nsh error naming the job, its 1-minute PBS time limit and walltime, and the job is gone.
  test(`${kind}: a job past its walltime fails the build naming the limit, and the job is gone`, async () => {
    const s = salt();
    const resources = JSON.stringify({ walltime: "00:01:00", ncpus: "1" });
    const r = await lab.nixBuild(jobArgs(s, { resources, sleep: "300" }), 270_000);
    const id = (await jobsOf(lab, s))[0]?.jobId;
    expectClearFailure(r, `job ${id} reached its PBS time limit of 1 min`);
    expect(r.stderr).toContain("walltime");
    expect(await jobGone(lab, id!, 30_000)).toBe(true);
    expect((await lab.qstat(id!))?.Exit_status).toBe(-29); // JOB_EXEC_KILL_WALLTIME: PBS, not nsh, ended it
  }, 300_000);

  // Expected: with pbs-host/pbs-port naming a server nobody answers at, the build fails at once with an
  // nsh error naming that server (host:port), no stack trace, no job; `nsh doctor` fails naming it too.
  test(`${kind}: the PBS server unreachable: a clear error naming it, no job`, async () => {
    const port = await closedPort();
    lab.confWith({ "pbs-host": "127.0.0.1", "pbs-port": String(port) });
    try {
      const s = salt();
      const before = await lab.liveJobs();
      const r = await lab.nixBuild(jobArgs(s), 150_000);
      expectClearFailure(r, `127.0.0.1:${port}`);
      expect(r.stderr).toMatch(/reach|connect|answer/i);
      await expectNoJob(s, before);
      const d = await lab.nsh(["doctor"]);
      if (d.code === 0 || !d.stdout.includes(`127.0.0.1:${port}`)) console.log(d.stdout, d.stderr);
      expect(d.code).not.toBe(0);
      expect(d.stdout).toContain(`127.0.0.1:${port}`);
      expect(hasStackTrace(d.stdout + d.stderr)).toBe(false);
    } finally {
      lab.writeConf();
    }
  }, 300_000);

  // Expected: a job user PBS refuses (the queue's acl_users does not list it) fails the build with an nsh
  // error saying PBS refused it and naming the user, no job; a job user the system does not know fails
  // it naming the setting, no job.
  const users: [string, string, RegExp][] = [
    ["refused by PBS (not in the queue's acl_users)", "nobody",
      new RegExp(`Unauthorized Request.*PBS refused ${userSetting} nobody`)],
    ["unknown to the system", "nsh-no-such-user", new RegExp(`${userSetting}.*nsh-no-such-user.*no such user`)],
  ];
  for (const [what, user, says] of users) {
    test(`${kind}: a job user ${what}: a clear error, no job`, async () => {
      lab.confWith({ [userSetting]: user });
      try {
        const s = salt();
        const before = await lab.liveJobs();
        const r = await lab.nixBuild(jobArgs(s), 150_000);
        expectClearFailure(r, says);
        await expectNoJob(s, before);
      } finally {
        lab.writeConf();
      }
    }, 300_000);
  }

  // Expected: when the node PBS runs the job on refuses ssh (its sshd is not listening), the build fails
  // with an nsh error naming the node, and its job is cancelled: none is left queued or running.
  test(`${kind}: the job's node unreachable by ssh: a clear error naming it, and no job is left`, async () => {
    const nodeDown = path.join(lab.nix.root, "node-down.ssh_config");
    const block = [`Host ${lab.pbs.serverHost}`, "  HostName 127.0.0.1", `  Port ${await closedPort()}`, ""];
    fs.writeFileSync(nodeDown, [...block, fs.readFileSync(lab.sshConfig, "utf8")].join("\n"));
    lab.confWith({ "ssh-config": nodeDown });
    try {
      const s = salt();
      const r = await lab.nixBuild(jobArgs(s), 150_000);
      expectClearFailure(r, new RegExp(`node ${lab.pbs.serverHost.replace(/\./g, "\\.")}\\b`));
      const id = (await jobsOf(lab, s))[0]?.jobId;
      expect(id).toBeDefined();
      expect(await jobGone(lab, id!, 30_000)).toBe(true);
    } finally {
      lab.writeConf();
    }
  }, 300_000);

  // Expected: pbsResources that is not a JSON object of strings fails the build before anything is
  // submitted, with an nsh error naming the attribute (and the key, when one is wrong); no job.
  const malformed: [string, string, RegExp][] = [
    ["not JSON", "{not json", /pbsResources/],
    ["a JSON array", JSON.stringify(["ncpus=1"]), /pbsResources/],
    ["a number as a value", JSON.stringify({ ncpus: 1, walltime: "00:07:00" }), /pbsResources.*ncpus|ncpus.*pbsResources/],
    ["an empty value", JSON.stringify({ ncpus: "", walltime: "00:07:00" }), /pbsResources.*ncpus|ncpus.*pbsResources/],
  ];
  for (const [what, resources, says] of malformed) {
    test(`${kind}: pbsResources ${what}: a clear error naming the attribute, no job`, async () => {
      const s = salt();
      const before = await lab.liveJobs();
      const r = await lab.nixBuild(jobArgs(s, { resources }), 90_000);
      expectClearFailure(r, says);
      expect(r.stderr).toContain(`pbsjob-${s}.drv`);
      await expectNoJob(s, before);
    }, 120_000);
  }
}
