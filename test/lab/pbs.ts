// A real single-node OpenPBS for tests: server, scheduler, comm, MoM and the
// PBS-managed PostgreSQL datastore, all inside a network namespace of the
// lab's own (test/lab/pbs-netns.ts), with a private PBS_HOME and pbs.conf under
// one dir in /var/lib/nsh-lab/pbs. OpenPBS is built once into a cache (test/lab/pbs-build.ts).
//
// Clients run in the host namespace with lab.env (PBS_CONF_FILE, PATH with the
// PBS bin first: slurm-wlm-torque puts another qsub in /usr/bin) as an
// unprivileged user (default `nshpbs`, created when missing): PBS refuses
// root's jobs ("Bad UID for job execution"). They reach the server at
// lab.serverHost over the veth pair and so appear to come from another host:
// the lab sets flatuid = True. Administration (qmgr) runs inside the namespace,
// where root is a PBS manager. Also set: job_history_enable (finished jobs stay
// visible as F), `$usecp *:/ /` in mom_priv/config (output files are copied
// with cp, there is no sshd for PBS), mailer /bin/true (no MTA).
//
// Several labs can run at once: each has its own namespace, addresses, host
// names, PBS_HOME and datastore port (the datastore's unix socket lives in the
// shared /var/run/postgresql and is named after the port).
// Stopping: every process in the namespace by PID (postmaster SIGINT, the rest
// SIGTERM, then SIGKILL), then veth, namespace, /etc/hosts lines and the lab dir;
// the watchdog does the same if the test runner dies.
//
// Use (see test/lab-selftest/pbs.test.ts):
//   const lab = await startPbsLab();          // in beforeAll(fn, 60 * 60_000): a cold cache builds first
//   const id = await lab.qsub(["-l", "walltime=00:01:00"], "#!/bin/sh\necho hi\n");
//   await lab.waitState(id, ["F"]); (await lab.qstat(id))?.Exit_status;
//   nsh or libpbs (`${lab.exec}/lib/libpbs.so.0`) as a client: lab.env, or PBS_SERVER=lab.serverHost;
//   root as a client (the hook): await lab.qmgr("set server acl_roots += root@*");
//   await lab.stop();
import * as fs from "node:fs";
import * as path from "node:path";
import { ensurePbsBuilt } from "./pbs-build.ts";
import {
  cleanupStale, netnsPids, netnsUp, readState, stateFileOf, stopNetnsProcesses, teardown, type NetnsState,
} from "./pbs-netns.ts";
import {
  registerCleanup, runCommand, type RunOptions, type RunResult, unregisterCleanup, waitUntil,
} from "./proc.ts";

const SYS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const DATASTORE_RACE = /Error (creating|starting|initializing) (the )?PBS (datastore|Data Service)/i;
const LAB_DIRS = process.env.NSH_PBS_LAB_DIR ?? "/var/lib/nsh-lab/pbs";

export interface PbsLabOptions {
  /** the unprivileged user clients and jobs run as (created when missing) */
  user?: string;
  /** timeout per start step */
  stepTimeoutMs?: number;
}

export interface PbsJob {
  job_state?: string;
  Exit_status?: number;
  Job_Owner?: string;
  Output_Path?: string;
  Error_Path?: string;
  [k: string]: unknown;
}

export interface PbsLab {
  id: string;
  root: string;
  /** PBS_EXEC: the cached install */
  exec: string;
  home: string;
  confFile: string;
  /** PBS_SERVER: the namespace side's host name */
  serverHost: string;
  netns: NetnsState;
  user: { name: string; uid: number; gid: number; home: string };
  /** world-writable; qsub runs here, so default output files land here */
  jobsDir: string;
  /** environment for clients in the host namespace */
  env: Record<string, string>;
  startMs: Record<string, number>;
  /** run a client command in the host namespace as lab.user (asRoot: as root) */
  run(argv: string[], o?: RunOptions & { asRoot?: boolean }): Promise<RunResult>;
  /** qsub args as lab.user; `script` goes to stdin; returns the job id */
  qsub(args: string[], script?: string): Promise<string>;
  /** `qstat -x -f -F json` of one job (finished ones included); null when unknown */
  qstat(jobId: string): Promise<PbsJob | null>;
  qdel(jobId: string): Promise<RunResult>;
  /** poll qstat until job_state is one of `states`; returns the last state seen ("" if none) */
  waitState(jobId: string, states: string[], timeoutMs?: number): Promise<string>;
  /** qmgr -c inside the namespace (root@serverHost is a PBS manager) */
  qmgr(cmd: string): Promise<RunResult>;
  /** PIDs of every process in the lab's namespace */
  pids(): number[];
  logTails(lines?: number): string;
  stop(): Promise<{ ms: number; killed: number; left: number[] }>;
}

/** qmgr settings the lab applies at start. */
export const LAB_SERVER_SETTINGS = [
  "set server flatuid = True", // clients come from the host side of the veth: another host to PBS
  "set server job_history_enable = True",
  "set server scheduling = True",
  // PBS mails the admin (at shutdown) and job owners through sendmail, which hangs here without an MTA
  "set server mailer = /bin/true",
];

/** pbs.conf for a lab: every daemon and client uses the namespace side's name. */
export function pbsConf(o: { exec: string; home: string; host: string; dataPort: number }): string {
  return [
    `PBS_SERVER=${o.host}`, `PBS_SERVER_HOST_NAME=${o.host}`, `PBS_LEAF_NAME=${o.host}`, `PBS_MOM_NODE_NAME=${o.host}`,
    "PBS_START_SERVER=1", "PBS_START_SCHED=1", "PBS_START_COMM=1", "PBS_START_MOM=1",
    `PBS_EXEC=${o.exec}`, `PBS_HOME=${o.home}`, `PBS_DATA_SERVICE_PORT=${o.dataPort}`,
    "PBS_CORE_LIMIT=unlimited", "PBS_SCP=/usr/bin/scp", "",
  ].join("\n");
}

/** The job of `qstat -f -F json` output, or null. */
export function parseQstatJson(text: string, jobId: string): PbsJob | null {
  let parsed: { Jobs?: Record<string, PbsJob> };
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    return null;
  }
  const jobs = parsed.Jobs ?? {};
  return jobs[jobId] ?? Object.entries(jobs).find(([k]) => k.split(".")[0] === jobId.split(".")[0])?.[1] ?? null;
}

function passwdEntry(name: string): { name: string; uid: number; gid: number; home: string } | null {
  for (const line of fs.readFileSync("/etc/passwd", "utf8").split("\n")) {
    const f = line.split(":");
    if (f[0] === name && f.length >= 7) return { name, uid: Number(f[2]), gid: Number(f[3]), home: f[5]! };
  }
  return null;
}

async function ensureUser(name: string): Promise<{ name: string; uid: number; gid: number; home: string }> {
  let u = passwdEntry(name);
  if (!u) {
    const r = await runCommand(["useradd", "-m", "-s", "/bin/bash", name], {
      env: { PATH: SYS_PATH },
      timeoutMs: 60_000,
    });
    u = passwdEntry(name);
    if (!u) throw new Error(`PBS lab: could not create user ${name} (useradd exit ${r.code}: ${r.stderr.trim()})`);
  }
  if (u.uid === 0) throw new Error(`PBS lab: user ${name} is root; PBS refuses root's jobs`);
  return u;
}

const lastFile = (dir: string): string | null => {
  try {
    const names = fs.readdirSync(dir).sort();
    return names.length > 0 ? path.join(dir, names[names.length - 1]!) : null;
  } catch {
    return null;
  }
};

export async function startPbsLab(opts: PbsLabOptions = {}): Promise<PbsLab> {
  const t0 = performance.now();
  const startMs: Record<string, number> = {};
  const mark = (name: string): void => void (startMs[name] = Math.round(performance.now() - t0));
  const install = await ensurePbsBuilt();
  const exec = install.exec;
  mark("build checked");
  const user = await ensureUser(opts.user ?? "nshpbs");
  await cleanupStale();
  const stepMs = opts.stepTimeoutMs ?? 120_000;

  let id = "";
  do id = Math.floor(Math.random() * 0xffff).toString(16).padStart(4, "0");
  while (fs.existsSync(stateFileOf(id)) || fs.existsSync(`/run/netns/nshpbs-${id}`));
  // Not under /tmp: MoM refuses a PBS_HOME below a world-writable directory ("Security violation").
  fs.mkdirSync(LAB_DIRS, { recursive: true, mode: 0o755 });
  const root = fs.mkdtempSync(path.join(LAB_DIRS, `${id}-`));
  fs.chmodSync(root, 0o755); // the datastore's user (postgres) and the test user go through it
  const home = path.join(root, "home"); // created by pbs_habitat
  const confFile = path.join(root, "pbs.conf");
  const jobsDir = path.join(root, "jobs");
  fs.mkdirSync(jobsDir, { mode: 0o1777 });
  fs.chmodSync(jobsDir, 0o1777);
  const postmasterPidFile = path.join(home, "datastore", "postmaster.pid");
  const bun = /bun/.test(path.basename(process.execPath)) ? process.execPath : (Bun.which("bun") ?? "bun");
  registerCleanup(`pbs-${id}`, [
    "env", "NSH_LAB_WATCHDOG=0", bun, path.join(import.meta.dir, "pbs-netns.ts"), "cleanup", stateFileOf(id),
  ]);

  let ns: NetnsState | undefined;
  const daemonEnv = { PATH: SYS_PATH, LC_ALL: "C", PBS_CONF_FILE: confFile };
  const env: Record<string, string> = {
    PATH: `${exec}/bin:${process.env.PATH ?? SYS_PATH}`,
    PBS_CONF_FILE: confFile,
    LC_ALL: "C",
  };
  const inNs = (argv: string[], timeoutMs = stepMs): Promise<RunResult> =>
    runCommand(["ip", "netns", "exec", ns!.netns, ...argv], { env: daemonEnv, cwd: "/", timeoutMs });

  const logTails = (lines = 15): string => {
    const logDirs = ["server_logs", "sched_logs", "comm_logs", "mom_logs", "datastore/pg_log"];
    const files = logDirs.map((d) => lastFile(path.join(home, d)));
    files.push(path.join(home, "spool", "db_start.log"));
    return files.filter((f): f is string => f !== null && fs.existsSync(f)).map((f) => {
      const text = fs.readFileSync(f, "latin1").split("\n").slice(-lines).join("\n");
      return `--- ${f}\n${text}`;
    }).join("\n");
  };
  const fail = (what: string, r?: RunResult): Error =>
    new Error(`PBS lab ${root}: ${what}` +
      (r ? ` (exit ${r.code}${r.timedOut ? ", timed out" : ""})\n${r.stdout}${r.stderr}` : "") + `\n${logTails()}`);

  const run = (argv: string[], o: RunOptions & { asRoot?: boolean } = {}): Promise<RunResult> => {
    const asUser = o.asRoot
      ? argv
      : ["setpriv", `--reuid=${user.uid}`, `--regid=${user.gid}`, "--init-groups", "--", ...argv];
    const userEnv: Record<string, string> = o.asRoot
      ? {}
      : { HOME: user.home, USER: user.name, LOGNAME: user.name, SHELL: "/bin/sh" };
    const cwd = o.cwd ?? jobsDir;
    return runCommand(asUser, { timeoutMs: 60_000, ...o, env: { ...env, ...userEnv, ...o.env }, cwd });
  };

  const qstat = async (jobId: string): Promise<PbsJob | null> => {
    const r = await run(["qstat", "-x", "-f", "-F", "json", jobId], { timeoutMs: 30_000 });
    return r.code === 0 ? parseQstatJson(r.stdout, jobId) : null;
  };

  let stopped: Promise<{ ms: number; killed: number; left: number[] }> | undefined;
  const lab: PbsLab = {
    id, root, exec, home, confFile, user, jobsDir, env, startMs,
    serverHost: "", // set with netns once the namespace exists
    netns: undefined as unknown as NetnsState,
    run,
    async qsub(args: string[], script?: string): Promise<string> {
      const r = await run(["qsub", ...args], { stdin: script, timeoutMs: 60_000 });
      if (r.code !== 0 || !r.stdout.trim()) {
        throw new Error(`qsub ${args.join(" ")} failed (exit ${r.code}): ${r.stderr.trim()}`);
      }
      return r.stdout.trim();
    },
    qstat,
    qdel: (jobId: string) => run(["qdel", jobId], { timeoutMs: 60_000 }),
    async waitState(jobId: string, states: string[], timeoutMs = 60_000): Promise<string> {
      let state = "";
      await waitUntil(async () => {
        state = (await qstat(jobId))?.job_state ?? state;
        return states.includes(state);
      }, timeoutMs, 100);
      return state;
    },
    qmgr: (cmd: string) => inNs([path.join(exec, "bin", "qmgr"), "-c", cmd], 60_000),
    pids: () => (ns ? netnsPids(ns.ino) : []),
    logTails,
    stop(): Promise<{ ms: number; killed: number; left: number[] }> {
      stopped ??= (async () => {
        const s0 = performance.now();
        const st = ns ?? readState(stateFileOf(id)); // netnsUp may have failed halfway
        const res = st ? await teardown(st) : { killed: [], left: [] };
        if (!st && fs.existsSync(root)) fs.rmSync(root, { recursive: true, force: true });
        unregisterCleanup(`pbs-${id}`);
        return { ms: Math.round(performance.now() - s0), killed: res.killed.length, left: res.left };
      })();
      return stopped;
    },
  };

  try {
    ns = await netnsUp(id, root, postmasterPidFile);
    lab.netns = ns;
    lab.serverHost = ns.nsHost;
    mark("netns up");
    const dataPort = 20000 + (parseInt(id, 16) % 10000);
    fs.writeFileSync(confFile, pbsConf({ exec, home, host: ns.nsHost, dataPort }), { mode: 0o644 });

    // PBS_HOME and the datastore (initdb, server -t create, workq, node), with the final host name from the start
    // Under load its createdb can come before the new datastore's socket exists ("No such file"): try again.
    for (let attempt = 1; ; attempt++) {
      const hab = await inNs([path.join(exec, "libexec", "pbs_habitat")], 10 * 60_000);
      if (hab.code === 0 && fs.existsSync(path.join(home, "mom_priv"))) break;
      const datastoreRace = DATASTORE_RACE.test(hab.stdout);
      if (attempt === 3 || !datastoreRace) {
        throw fail(`pbs_habitat failed (attempt ${attempt})`, hab);
      }
      await stopNetnsProcesses(ns, 10_000);
      fs.rmSync(home, { recursive: true, force: true });
    }
    mark("PBS_HOME created");
    fs.appendFileSync(path.join(home, "mom_priv", "config"), "$usecp *:/ /\n");

    const start = await inNs([path.join(exec, "libexec", "pbs_init.d"), "start"], 5 * 60_000);
    if (start.code !== 0) throw fail("pbs_init.d start failed", start);
    mark("daemons started");
    let last: RunResult | undefined;
    const up = await waitUntil(async () => {
      last = await run(["qstat", "-B"], { asRoot: true, timeoutMs: 20_000 });
      return last.code === 0;
    }, stepMs, 200);
    if (!up) throw fail(`server not reachable at ${ns.nsHost} from the host namespace`, last);
    for (const cmd of LAB_SERVER_SETTINGS) {
      const r = await lab.qmgr(cmd);
      if (r.code !== 0) throw fail(`qmgr -c "${cmd}" failed`, r);
    }
    const free = await waitUntil(async () => {
      last = await run(["pbsnodes", ns!.nsHost], { asRoot: true, timeoutMs: 20_000 });
      return /^\s*state = free\s*$/m.test(last.stdout);
    }, stepMs, 200);
    if (!free) throw fail(`node ${ns.nsHost} not free`, last);
    mark("node free");
  } catch (e) {
    await lab.stop();
    throw e;
  }
  return lab;
}
