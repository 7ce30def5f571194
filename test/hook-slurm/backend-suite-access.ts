// Two scenarios of the per-backend suite (backend-suite.ts) about reaching things nsh needs:
// - the job's node unreachable over ssh (its name maps to a closed port; the login host still
//   answers): the build fails with a clear nsh error naming the node, no stack trace, and the job
//   it submitted is ended (not left in Slurm) within a bound;
// - the scheduler refuses nsh's credentials: slurm (REST) gets the cluster's JWT, expired, and a
//   JWT signed with another key; slurm-cli and slurm-native a munged whose
//   key is not slurmctld's (what a login node with a stale munge.key hits). The build fails at
//   once with a clear nsh error saying authentication failed, naming the backend, no stack
//   trace, no job, no hang; `nsh doctor` fails saying the same.
import { expect, test } from "bun:test";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Backend, ClusterLab } from "../lab/cluster.ts";
import { mintSlurmJwt } from "../lab/slurm-conf.ts";
import { confWith, hasStackTrace, jobState, jobsOf, salt, spawnNsh, until } from "./helpers.ts";

type Ran = { code: number | null; stderr: string; timedOut: boolean };

export interface AccessSuite {
  backend: Backend;
  lab: () => ClusterLab;
  jobArgs: (s: string) => string[];
  expectClearFailure: (r: Ran, expected: RegExp | string) => void;
  slurmJobsNamed: (s: string) => Promise<string[]>;
  boundMs: number;
}

/** How each backend names itself in its errors. */
const NAMED: Record<Backend, RegExp> = {
  slurm: /slurmrestd|slurm-jwt/,
  "slurm-cli": /slurm-cli/,
  "slurm-native": /slurm-native/,
};

export function accessScenarios(a: AccessSuite): void {
  test("the job's node unreachable over ssh: the node is named, the job does not stay", async () => {
    const lab = a.lab();
    const node = os.hostname().split(".")[0]!;
    const config = path.join(lab.nix.root, "unreachable-node.ssh_config");
    // ssh takes the first value it finds: the node's block comes first, the login host keeps the lab's.
    const rest = fs.readFileSync(lab.sshConfig, "utf8").replace(` ${node} `, " ");
    fs.writeFileSync(config, `Host ${node}\n  HostName 127.0.0.1\n  Port ${await closedPort()}\n\n${rest}`);
    confWith(lab, { "ssh-config": config });
    try {
      const s = salt();
      const r = await lab.nixBuild(a.jobArgs(s), 110000);
      a.expectClearFailure(r, new RegExp(`node ${node}\\b`));
      const id = jobsOf(lab, s)[0]?.jobId;
      expect(id).toBeDefined();
      const ended = await until(async () => {
        const st = await jobState(lab, id!);
        return st === "" || st === "CANCELLED" || st === "COMPLETED" || st === "FAILED" ? st : undefined;
      }, a.boundMs);
      expect(ended).toBeDefined();
    } finally {
      lab.writeConf();
    }
  }, 150000);

  const refusedTitle = "the scheduler refuses nsh's credentials (%s): authentication failed, no job, nsh doctor says so";
  test.each(REFUSED[a.backend])(refusedTitle, async (how) => {
    const lab = a.lab();
    const s = salt();
    const refused = await refusedCredentials(lab, how, s);
    confWith(lab, refused.values);
    try {
      const r = await lab.nixBuild(a.jobArgs(s), 110000);
      a.expectClearFailure(r, /authenticat/i);
      expect(r.stderr).toMatch(NAMED[a.backend]);
      if (refused.secret) for (const part of refused.secret.split(".")) expect(r.stderr).not.toContain(part);
      expect(await a.slurmJobsNamed(s)).toEqual([]);
      expect(jobsOf(lab, s).every((j) => j.jobId === undefined)).toBe(true);
      const doctor = spawnNsh(["doctor"], { ...lab.nix.env, NSH_CONF: lab.nshConf });
      const said = `${doctor.stdout.toString()}${doctor.stderr.toString()}`;
      if (doctor.exitCode === 0 || !/authenticat/i.test(said)) console.log(said);
      expect(doctor.exitCode).not.toBe(0);
      expect(said).toMatch(/authenticat/i);
      expect(hasStackTrace(said)).toBe(false);
    } finally {
      lab.writeConf();
      refused.stop();
    }
  }, 150000);
}

interface Refused {
  /** the nsh.conf values that make the scheduler refuse nsh */
  values: Record<string, string>;
  /** a credential that must not be shown */
  secret?: string;
  stop: () => void;
}

/** How each backend's credential goes wrong at a real site. */
type Refusal = "expired JWT" | "JWT of another key" | "munge key not the cluster's";
const REFUSED: Record<Backend, Refusal[]> = {
  // An expired token is found by nsh before asking; one of another key only slurmctld can refuse.
  slurm: ["expired JWT", "JWT of another key"],
  "slurm-cli": ["munge key not the cluster's"],
  "slurm-native": ["munge key not the cluster's"],
};

/** A credential the lab's Slurm refuses, as a site could really have it. */
async function refusedCredentials(lab: ClusterLab, how: Refusal, s: string): Promise<Refused> {
  if (how !== "munge key not the cluster's") {
    // Expired two minutes ago (a long build outlives its token), or signed with a key not the cluster's.
    const token =
      how === "expired JWT" ? await lab.slurm.token("root", -120) : mintSlurmJwt(Buffer.from(`not-${s}`), "root", 3600);
    const file = path.join(lab.nix.root, `refused-${s}.jwt`);
    fs.writeFileSync(file, `${token}\n`, { mode: 0o600 });
    return { values: { "slurm-jwt-token-file": file }, secret: token, stop: () => {} };
  }
  const munged = await startOtherMunged(lab);
  const conf = path.join(lab.nix.root, "other-munge-slurm.conf");
  const text = fs.readFileSync(lab.slurm.confFile, "utf8");
  fs.writeFileSync(conf, text.replace(/^AuthInfo=.*$/m, `AuthInfo=socket=${munged.socket}`));
  return { values: { "slurm-conf": conf }, stop: munged.stop };
}

/** A munged of its own key (not slurmctld's), foreground, stopped by its PID. */
async function startOtherMunged(lab: ClusterLab): Promise<{ socket: string; stop: () => void }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-other-munge-"));
  fs.chmodSync(dir, 0o755); // the socket's directory must be reachable by every user
  const key = path.join(dir, "munge.key");
  fs.writeFileSync(key, crypto.randomBytes(1024), { mode: 0o600 });
  const socket = path.join(dir, "munge.sock");
  const p = Bun.spawn(
    ["munged", "-F", `--socket=${socket}`, `--key-file=${key}`, `--log-file=${path.join(dir, "munged.log")}`,
      `--pid-file=${path.join(dir, "munged.pid")}`, `--seed-file=${path.join(dir, "munged.seed")}`],
    { env: lab.slurm.env, stdio: ["ignore", "ignore", "pipe"] },
  );
  const stop = () => {
    p.kill("SIGTERM");
    fs.rmSync(dir, { recursive: true, force: true });
  };
  if (!(await until(() => (fs.existsSync(socket) ? true : p.exitCode !== null ? false : undefined), 20000))) {
    const why = await new Response(p.stderr).text();
    stop();
    throw new Error(`the second munged did not start: ${why}`);
  }
  return { socket, stop };
}

/** A loopback TCP port nothing listens on (bound, then closed). */
export async function closedPort(): Promise<number> {
  const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = server.port;
  server.stop(true);
  return port;
}
