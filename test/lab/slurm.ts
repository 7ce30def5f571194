// A private single-node Slurm (Debian 12: Slurm 22.05) for tests: its own
// munged, slurmctld, slurmd and slurmrestd (JWT), all under one mkdtemp dir.
//
// Facts this relies on (checked on Debian 12, Slurm 22.05.8, munge 0.5.15,
// root, no systemd; see also shared/reference/slurm-lab.md):
// * SLURM_CONF is honoured by slurmctld, slurmd, slurmrestd (also its
//   `-s list`), sbatch, squeue, sinfo, scontrol, scancel and libslurm;
//   /etc/slurm/slurm.conf is never needed (Debian ships no slurm.conf, so
//   every working command proves it). PlugStackConfig is set explicitly so
//   /etc/slurm/plugstack.conf is not read either. slurmstepd gets its config
//   from slurmd, and Slurm puts SLURM_CONF=<our conf> into every job's
//   environment (also for REST jobs with an explicit `environment`).
// * munge: a private munged runs as root with its own key and socket
//   (`munged -F --socket=... --key-file=...`). The socket's directory must be
//   world-executable ("Socket is inaccessible" otherwise), the key 0600.
//   Slurm finds the socket through `AuthInfo=socket=...` in slurm.conf, which
//   auth/munge and cred/munge both use, so clients need no munge variable
//   (libmunge itself has no socket environment variable).
// * Two labs run side by side: separate munge keys/sockets, ports, state and
//   spool dirs; both nodes may carry the machine's hostname because each
//   slurmd talks only to its own slurmctld (NodeAddr=127.0.0.1, own ports).
// * slurmrestd refuses root (and SlurmUser); `-u UID -g GID` (default the
//   user `nobody`) lets it bind as root and then drop privileges, so the
//   spawned PID is slurmrestd itself. It needs SLURM_JWT=daemon for
//   rest_auth/jwt and must not load the openapi/dbv* plugins without slurmdbd
//   (fatal), so the plugin list comes from `slurmrestd -s list` minus those.
// * Tokens: HS256 over the lab's key, payload {exp, iat, sun}; self-minted
//   tokens are accepted exactly like `scontrol token` ones. slurmrestd only
//   passes them through: a bad token gives 500 from slurmctld, missing
//   headers give 401.
// * Process tracking: the daemons run in the foreground (-D/-F) under
//   spawnBackground, and everything a lab starts carries the marker
//   (NSH_SLURM_LAB / SLURM_CONF under <root>): slurmstepd inherits slurmd's
//   environment and jobs get SLURM_CONF, so the marker sweep (and the
//   watchdog after a crash) finds orphaned slurmstepd and job processes.
import { createHmac } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { aptInstall } from "./apt.ts";
import { socketAccepts } from "./nix.ts";
import {
  type Background,
  isAlive,
  findByMarker,
  registerRoot,
  removeTree,
  runCommand,
  type RunOptions,
  type RunResult,
  spawnBackground,
  sweepMarker,
  tailFile,
  trySignal,
  unregisterRoot,
  waitUntil,
} from "./proc.ts";

const SYS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const SLURM_PACKAGES = ["slurm-wlm", "munge", "slurmrestd", "slurm-wlm-jwt-plugin"];
const BINARIES = ["munged", "slurmctld", "slurmd", "slurmrestd", "sbatch", "squeue", "sinfo", "scontrol", "scancel"];

export interface EnsureSlurmOptions {
  /** also install libslurm-dev (slurm.h, libslurm.so) for FFI tests */
  dev?: boolean;
}

const which = (cmd: string): string | null => Bun.which(cmd, { PATH: `${process.env.PATH ?? ""}:${SYS_PATH}` });

function pluginDirs(): string[] {
  const triplet = process.arch === "arm64" ? "aarch64-linux-gnu" : "x86_64-linux-gnu";
  return [`/usr/lib/${triplet}/slurm-wlm`, "/usr/lib64/slurm", "/usr/lib/slurm"];
}
const haveJwtPlugins = (): boolean =>
  pluginDirs().some((d) => fs.existsSync(path.join(d, "auth_jwt.so")) && fs.existsSync(path.join(d, "rest_auth_jwt.so")));
const haveSlurmDev = (): boolean => fs.existsSync("/usr/include/slurm/slurm.h");

function missing(opts: EnsureSlurmOptions): string[] {
  const out = BINARIES.filter((b) => which(b) === null);
  if (!haveJwtPlugins()) out.push("auth_jwt.so/rest_auth_jwt.so");
  if (opts.dev && !haveSlurmDev()) out.push("slurm/slurm.h");
  return out;
}

/** Install Slurm, munge, slurmrestd and the JWT plugins (and libslurm-dev with dev) when missing. */
export async function ensureSlurm(opts: EnsureSlurmOptions = {}): Promise<void> {
  if (missing(opts).length === 0) return;
  const pkgs = opts.dev ? [...SLURM_PACKAGES, "libslurm-dev"] : SLURM_PACKAGES;
  try {
    await aptInstall(pkgs);
  } catch (e) {
    throw new Error(`ensureSlurm: could not install ${pkgs.join(" ")}: ${(e as Error).message}`);
  }
  const left = missing(opts);
  if (left.length > 0) throw new Error(`ensureSlurm: still missing after apt-get install: ${left.join(", ")}`);
}

export interface SlurmLabOptions {
  /** short label used in the temp dir name */
  name?: string;
  /** CPUs the node advertises (SlurmdParameters=config_overrides), default 16 */
  cpus?: number;
  /** RealMemory in MB the node advertises, default the machine's memory */
  memoryMb?: number;
  /** DefMemPerCPU in MB, default 100 (without it a job gets the whole node's memory) */
  defMemPerCpuMb?: number;
  /** appended to slurm.conf (before the node/partition lines) */
  extraConf?: string;
  /** unprivileged user slurmrestd drops to (`-u/-g`), default "nobody" */
  restUser?: string;
  /** openapi plugins for slurmrestd, default every non-DB plugin it lists */
  openapiPlugins?: string[];
  /** bound for each start step (munged, slurmctld, node idle, slurmrestd), default 30 s */
  stepTimeoutMs?: number;
  /**
   * Return only after slurmctld's first scheduling pass (default true). Slurm
   * 22.05 reads SchedulerParameters (batch_sched_delay=0) inside the first
   * schedule() call; until then its built-in batch_sched_delay of 3 s applies,
   * so that pass comes ~3 s after slurmctld starts and a job submitted before
   * it waits until then. false: return ~0.3 s after start instead.
   */
  waitForScheduler?: boolean;
}

export interface SlurmLabPids {
  munged: number;
  slurmctld: number;
  slurmd: number;
  slurmrestd: number;
}

export interface RestOptions {
  /** JSON body (sent with Content-Type: application/json) or a raw string */
  body?: unknown;
  /** X-SLURM-USER-NAME, default "root" */
  user?: string;
  /** X-SLURM-USER-TOKEN; default a fresh token for `user`; null sends no auth headers */
  token?: string | null;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

export interface RestResponse {
  status: number;
  /** parsed JSON body, undefined when the body is not JSON */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- REST replies are untyped
  json: any;
  text: string;
  durationMs: number;
}

export interface SlurmLab {
  root: string;
  /** <root>/etc/slurm.conf; SLURM_CONF for clients (also for libslurm's slurm_init) */
  confFile: string;
  confDir: string;
  logDir: string;
  /** world-writable (1777) dir for job scripts and output; default cwd of run() */
  jobsDir: string;
  /** StateSaveLocation (0700, holds the JWT key) */
  stateDir: string;
  spoolDir: string;
  clusterName: string;
  /** = the machine's short hostname */
  nodeName: string;
  partition: string;
  cpus: number;
  memoryMb: number;
  ctldPort: number;
  slurmdPort: number;
  mungeSocket: string;
  jwtKeyFile: string;
  /** client environment: PATH, SLURM_CONF, NSH_SLURM_LAB (marker) */
  env: Record<string, string>;
  /** http://127.0.0.1:<restPort> */
  restUrl: string;
  restPort: number;
  /** versions slurmrestd serves, ascending, e.g. ["v0.0.36","v0.0.37","v0.0.38"] */
  apiVersions: string[];
  /** the highest of apiVersions */
  apiVersion: string;
  /** ms from startSlurmLab (after ensureSlurm) until the daemons answered, and until it returned */
  startMs: { daemons: number; ready: number };
  pids: SlurmLabPids;
  logs: { munged: string; slurmctld: string; slurmd: string; slurmrestd: string; jobcomp: string };
  /** HS256 JWT signed with the lab's key (same as `scontrol token`), default user root, 3600 s */
  token(user?: string, lifetimeSec?: number): Promise<string>;
  /** `scontrol token username=<user> lifespan=<s>` (needs slurmctld) */
  scontrolToken(user?: string, lifetimeSec?: number): Promise<string>;
  /** HTTP request to slurmrestd; path like "/slurm/v0.0.38/ping" */
  rest(method: string, urlPath: string, opts?: RestOptions): Promise<RestResponse>;
  /** run a client command with env (cwd jobsDir by default) */
  run(argv: string[], opts?: RunOptions): Promise<RunResult>;
  /** last lines of every daemon log, for error messages */
  logTails(lines?: number): string;
  /** stop all daemons, jobs and steps by PID (the directory stays) */
  stop(): Promise<void>;
  /** stop(), then remove the directory */
  cleanup(): Promise<void>;
}

/** HS256 JWT as Slurm's auth/jwt expects it: {"exp","iat","sun"}. */
export function mintSlurmJwt(key: Buffer, user: string, lifetimeSec: number, now = Math.floor(Date.now() / 1000)): string {
  const enc = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString("base64url");
  const head = enc({ alg: "HS256", typ: "JWT" });
  const payload = enc({ exp: now + lifetimeSec, iat: now, sun: user });
  const sig = createHmac("sha256", key).update(`${head}.${payload}`).digest("base64url");
  return `${head}.${payload}.${sig}`;
}

/** A port that was free a moment ago (callers retry on a bind race). */
function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function tcpAccepts(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.createConnection({ host: "127.0.0.1", port });
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.once("connect", () => done(true));
    sock.once("error", () => done(false));
  });
}

function lookupUser(name: string): { uid: number; gid: number } {
  for (const line of fs.readFileSync("/etc/passwd", "utf8").split("\n")) {
    const f = line.split(":");
    if (f[0] === name && f.length >= 4) return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  throw new Error(`startSlurmLab: no user ${name} in /etc/passwd (restUser)`);
}

/** PIDs carrying the lab marker, plus all their descendants (jobs whose script dropped SLURM_CONF). */
function labProcesses(root: string): number[] {
  const children = new Map<number, number[]>();
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(name));
      children.set(ppid, list);
    } catch {
      // gone
    }
  }
  const seen = new Set<number>();
  const stack = findByMarker(root);
  while (stack.length > 0) {
    const pid = stack.pop()!;
    if (seen.has(pid) || pid === process.pid) continue;
    seen.add(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  return [...seen].filter(isAlive);
}

function slurmConf(o: {
  root: string;
  node: string;
  cluster: string;
  partition: string;
  ctldPort: number;
  slurmdPort: number;
  cpus: number;
  memoryMb: number;
  defMemPerCpuMb: number;
  mungeSocket: string;
  jwtKeyFile: string;
  extraConf?: string;
}): string {
  const d = (p: string): string => path.join(o.root, p);
  return `# private slurm lab (test/lab/slurm.ts)
ClusterName=${o.cluster}
SlurmctldHost=${o.node}(127.0.0.1)
SlurmctldPort=${o.ctldPort}
SlurmdPort=${o.slurmdPort}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=${o.mungeSocket}
AuthAltTypes=auth/jwt
AuthAltParameters=jwt_key=${o.jwtKeyFile}
PlugStackConfig=${d("etc/plugstack.conf")}
StateSaveLocation=${d("state")}
SlurmdSpoolDir=${d("spool")}
SlurmctldPidFile=${d("run/slurmctld.pid")}
SlurmdPidFile=${d("run/slurmd.pid")}
SlurmctldLogFile=${d("log/slurmctld.log")}
SlurmdLogFile=${d("log/slurmd.log")}
SlurmctldDebug=info
SlurmdDebug=info
# no cgroups, no accounting database
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=${d("log/jobcomp.log")}
MailProg=/bin/true
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=${o.defMemPerCpuMb}
SlurmdParameters=config_overrides
ReturnToService=2
# latency: without batch_sched_delay=0 a batch job waits ~3 s, with it ~1 s (22.05's scheduler tick)
SchedulerType=sched/backfill
SchedulerParameters=sched_min_interval=0,batch_sched_delay=0,default_queue_depth=1000
MinJobAge=3600
KillWait=2
InactiveLimit=0
Waittime=0
MessageTimeout=10
${o.extraConf ? `${o.extraConf}\n` : ""}NodeName=${o.node} NodeAddr=127.0.0.1 NodeHostname=${o.node} CPUs=${o.cpus} RealMemory=${o.memoryMb} State=UNKNOWN
PartitionName=${o.partition} Nodes=ALL Default=YES MaxTime=INFINITE State=UP
`;
}

const addrInUse = (text: string): boolean => /Address already in use|EADDRINUSE|Unable to bind/i.test(text);

export async function startSlurmLab(opts: SlurmLabOptions = {}): Promise<SlurmLab> {
  await ensureSlurm();
  const restUser = lookupUser(opts.restUser ?? "nobody");
  const started = Date.now();
  const stepMs = opts.stepTimeoutMs ?? 30_000;
  const label = (opts.name ?? "").replace(/[^A-Za-z0-9_-]/g, "").slice(0, 12);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), label ? `nsh-slurm-${label}-` : "nsh-slurm-"));
  registerRoot(root, true);
  // slurmrestd (unprivileged) reads slurm.conf, jobs of other users write to jobs/
  fs.chmodSync(root, 0o755);
  const dir = (p: string, mode: number): string => {
    const full = path.join(root, p);
    fs.mkdirSync(full, { recursive: true });
    fs.chmodSync(full, mode);
    return full;
  };
  const confDir = dir("etc", 0o755);
  const logDir = dir("log", 0o755);
  const jobsDir = dir("jobs", 0o1777);
  const stateDir = dir("state", 0o700);
  const spoolDir = dir("spool", 0o755);
  const mungeDir = dir("munge", 0o700);
  dir("run", 0o755); // pid files, munge socket (its dir must be world-executable)
  const confFile = path.join(confDir, "slurm.conf");
  const mungeSocket = path.join(root, "run", "munge.sock");
  const mungeKey = path.join(mungeDir, "munge.key");
  const jwtKeyFile = path.join(stateDir, "jwt_hs256.key");
  fs.writeFileSync(mungeKey, crypto.getRandomValues(new Uint8Array(1024)), { mode: 0o600 });
  const jwtKey = Buffer.from(crypto.getRandomValues(new Uint8Array(32)));
  fs.writeFileSync(jwtKeyFile, jwtKey, { mode: 0o600 });
  fs.writeFileSync(path.join(confDir, "plugstack.conf"), "");

  const nodeName = os.hostname().split(".")[0] || "localhost";
  const clusterName = "nshlab";
  const partition = "debug";
  const cpus = opts.cpus ?? 16;
  const memoryMb = opts.memoryMb ?? Math.floor(os.totalmem() / 1024 / 1024);
  const logs = {
    munged: path.join(logDir, "munged.log"),
    slurmctld: path.join(logDir, "slurmctld.log"),
    slurmd: path.join(logDir, "slurmd.log"),
    slurmrestd: path.join(logDir, "slurmrestd.log"),
    jobcomp: path.join(logDir, "jobcomp.log"),
  };
  const outFile = (name: string): string => path.join(logDir, `${name}.out`);

  const env: Record<string, string> = {
    PATH: process.env.PATH ?? SYS_PATH,
    SLURM_CONF: confFile,
    NSH_SLURM_LAB: root, // marker for the /proc environ sweep
  };
  const daemonEnv: Record<string, string> = { PATH: SYS_PATH, LC_ALL: "C", SLURM_CONF: confFile, NSH_SLURM_LAB: root };

  const daemons: Partial<Record<keyof SlurmLabPids, Background>> = {};
  const pids: SlurmLabPids = { munged: 0, slurmctld: 0, slurmd: 0, slurmrestd: 0 };
  let ctldPort = 0;
  let slurmdPort = 0;
  let restPort = 0;
  let apiVersions: string[] = [];
  let stopped = false;
  let cleaned = false;

  const logTails = (lines = 20): string =>
    (["munged", "slurmctld", "slurmd", "slurmrestd"] as const)
      .map((n) => `--- ${n}.log\n${tailFile(logs[n], lines)}\n--- ${n}.out\n${tailFile(outFile(n), lines)}`)
      .join("\n");
  const exited = (bg: Background): boolean => bg.proc.exitCode !== null || bg.proc.signalCode !== null;
  const spawn = (name: keyof SlurmLabPids, argv: string[], extraEnv: Record<string, string> = {}): Background => {
    const bg = spawnBackground(argv, { ...daemonEnv, ...extraEnv }, outFile(name), "/");
    daemons[name] = bg;
    pids[name] = bg.pid;
    return bg;
  };
  const fail = (what: string): Error => new Error(`slurm lab ${root}: ${what}\n${logTails()}`);

  const run = (argv: string[], runOpts: RunOptions = {}): Promise<RunResult> =>
    runCommand(argv, { timeoutMs: 60_000, ...runOpts, env: { ...env, ...runOpts.env }, cwd: runOpts.cwd ?? jobsDir });

  const token = async (user = "root", lifetimeSec = 3600): Promise<string> => mintSlurmJwt(jwtKey, user, lifetimeSec);

  const rest = async (method: string, urlPath: string, ro: RestOptions = {}): Promise<RestResponse> => {
    const user = ro.user ?? "root";
    const headers: Record<string, string> = { Accept: "application/json", ...ro.headers };
    if (ro.token !== null) {
      headers["X-SLURM-USER-NAME"] = user;
      headers["X-SLURM-USER-TOKEN"] = ro.token ?? (await token(user));
    }
    let body: string | undefined;
    if (ro.body !== undefined) {
      body = typeof ro.body === "string" ? ro.body : JSON.stringify(ro.body);
      headers["Content-Type"] ??= "application/json";
    }
    const t0 = performance.now();
    const res = await fetch(`http://127.0.0.1:${restPort}${urlPath}`, {
      method,
      headers,
      body,
      signal: AbortSignal.timeout(ro.timeoutMs ?? 30_000),
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, json, text, durationMs: performance.now() - t0 };
  };

  const stopDaemons = async (): Promise<void> => {
    // Snapshot before anything dies: orphaned job processes get reparented.
    const before = labProcesses(root);
    const stopOne = async (name: keyof SlurmLabPids, graceMs: number): Promise<void> => {
      const bg = daemons[name];
      if (bg) await bg.stop(graceMs);
    };
    // slurmctld saves state on SIGTERM (~2 s); the lab's state is disposable.
    await Promise.all([stopOne("slurmrestd", 2000), stopOne("slurmd", 2000), stopOne("slurmctld", 0)]);
    for (const pid of before) trySignal(pid, "SIGKILL");
    await sweepMarker(root, 500);
    await stopOne("munged", 2000);
    await waitUntil(() => before.every((pid) => !isAlive(pid)), 5000);
  };

  const lab: SlurmLab = {
    root,
    confFile,
    confDir,
    logDir,
    jobsDir,
    stateDir,
    spoolDir,
    clusterName,
    nodeName,
    partition,
    cpus,
    memoryMb,
    ctldPort: 0,
    slurmdPort: 0,
    mungeSocket,
    jwtKeyFile,
    env,
    restUrl: "",
    restPort: 0,
    apiVersions: [],
    apiVersion: "",
    startMs: { daemons: 0, ready: 0 },
    pids,
    logs,
    token,
    async scontrolToken(user = "root", lifetimeSec = 3600): Promise<string> {
      const r = await run(["scontrol", "token", `username=${user}`, `lifespan=${lifetimeSec}`], { timeoutMs: 20_000 });
      const m = /SLURM_JWT=(\S+)/.exec(r.stdout);
      if (r.code !== 0 || !m?.[1]) throw new Error(`scontrol token failed (exit ${r.code}): ${r.stdout}${r.stderr}`);
      return m[1];
    },
    rest,
    run,
    logTails,
    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      await stopDaemons();
    },
    async cleanup(): Promise<void> {
      if (cleaned) return;
      cleaned = true;
      await lab.stop();
      removeTree(root);
      unregisterRoot(root);
    },
  };

  try {
    // munged: private key and socket, foreground so the PID is ours
    fs.writeFileSync(outFile("munged"), "");
    const munged = spawn("munged", [
      which("munged") ?? "/usr/sbin/munged",
      "-F",
      `--socket=${mungeSocket}`,
      `--key-file=${mungeKey}`,
      `--log-file=${logs.munged}`,
      `--pid-file=${path.join(root, "run", "munged.pid")}`,
      `--seed-file=${path.join(mungeDir, "munged.seed")}`,
    ]);
    if (!(await waitUntil(async () => exited(munged) || (await socketAccepts(mungeSocket)), stepMs)) || exited(munged)) {
      throw fail(`munged ${exited(munged) ? `exited (code ${munged.proc.exitCode})` : `did not open ${mungeSocket}`}`);
    }

    // slurmctld + slurmd on free ports; a port taken in between means another try
    for (let attempt = 1; ; attempt++) {
      ctldPort = await freePort("0.0.0.0");
      do slurmdPort = await freePort("0.0.0.0");
      while (slurmdPort === ctldPort);
      fs.writeFileSync(
        confFile,
        slurmConf({
          root,
          node: nodeName,
          cluster: clusterName,
          partition,
          ctldPort,
          slurmdPort,
          cpus,
          memoryMb,
          defMemPerCpuMb: opts.defMemPerCpuMb ?? 100,
          mungeSocket,
          jwtKeyFile,
          extraConf: opts.extraConf,
        }),
      );
      fs.chmodSync(confFile, 0o644);
      const ctld = spawn("slurmctld", [which("slurmctld") ?? "/usr/sbin/slurmctld", "-D"]);
      // Probe the port, never the CLI: `scontrol ping` against a controller
      // that is not up yet retries for ~9 s.
      const ctldUp = await waitUntil(async () => exited(ctld) || (await tcpAccepts(ctldPort)), stepMs);
      let slurmdOk = false;
      if (ctldUp && !exited(ctld)) {
        const slurmd = spawn("slurmd", [which("slurmd") ?? "/usr/sbin/slurmd", "-D", "-N", nodeName]);
        const up = await waitUntil(async () => exited(slurmd) || (await tcpAccepts(slurmdPort)), stepMs);
        slurmdOk = up && !exited(slurmd);
        if (!slurmdOk && !(addrInUse(tailFile(logs.slurmd, 40) + tailFile(outFile("slurmd"), 40)) && attempt < 4)) {
          throw fail(`slurmd ${exited(slurmd) ? `exited (code ${slurmd.proc.exitCode})` : `did not listen on ${slurmdPort}`}`);
        }
      } else if (!(addrInUse(tailFile(logs.slurmctld, 40) + tailFile(outFile("slurmctld"), 40)) && attempt < 4)) {
        throw fail(`slurmctld ${exited(ctld) ? `exited (code ${ctld.proc.exitCode})` : `did not listen on ${ctldPort}`}`);
      }
      if (slurmdOk) break;
      await daemons.slurmd?.stop(500);
      await ctld.stop(0);
      delete daemons.slurmd;
    }
    lab.ctldPort = ctldPort;
    lab.slurmdPort = slurmdPort;

    // node registered and schedulable ("idle*" = not responding yet)
    let nodeState = "";
    const idle = await waitUntil(
      async () => {
        const r = await run(["sinfo", "-h", "-n", nodeName, "-o", "%t"], { timeoutMs: 15_000 });
        nodeState = r.stdout.trim() || r.stderr.trim();
        return /^(idle|mix|alloc)$/.test(nodeState);
      },
      stepMs,
      30,
    );
    if (!idle) throw fail(`node ${nodeName} not idle within ${stepMs} ms (sinfo: ${nodeState})`);

    // slurmrestd: unprivileged, JWT, every openapi plugin that works without slurmdbd
    const restd = which("slurmrestd") ?? "/usr/sbin/slurmrestd";
    const ids = ["-u", String(restUser.uid), "-g", String(restUser.gid)];
    let plugins = opts.openapiPlugins;
    if (!plugins) {
      const r = await runCommand([restd, ...ids, "-s", "list"], { env: daemonEnv, timeoutMs: 20_000 });
      plugins = [...`${r.stdout}\n${r.stderr}`.matchAll(/\b(openapi\/\S+)/g)]
        .map((m) => m[1]!)
        .filter((p) => !/\/db|slurmdbd/.test(p));
      if (plugins.length === 0) throw fail(`slurmrestd -s list gave no usable openapi plugin:\n${r.stdout}${r.stderr}`);
    }
    let restOk = false;
    for (let attempt = 1; attempt <= 4 && !restOk; attempt++) {
      restPort = await freePort("127.0.0.1");
      fs.writeFileSync(logs.slurmrestd, "");
      const bg = spawnBackground(
        [restd, ...ids, "-a", "rest_auth/jwt", "-s", plugins.join(","), `127.0.0.1:${restPort}`],
        { ...daemonEnv, SLURM_JWT: "daemon" },
        logs.slurmrestd,
        "/",
      );
      daemons.slurmrestd = bg;
      pids.slurmrestd = bg.pid;
      let last = "";
      const ok = await waitUntil(
        async () => {
          if (exited(bg)) return true;
          try {
            const r = await rest("GET", "/openapi/v3", { timeoutMs: 2000 });
            last = `${r.status} ${r.text.slice(0, 200)}`;
            if (r.status !== 200) return false;
            const paths = Object.keys((r.json as { paths?: Record<string, unknown> } | undefined)?.paths ?? {});
            apiVersions = [...new Set(paths.map((p) => /^\/slurm\/(v\d+\.\d+\.\d+)\//.exec(p)?.[1]).filter((v) => v !== undefined))];
            return true;
          } catch (e) {
            last = String(e);
            return false;
          }
        },
        stepMs,
        30,
      );
      restOk = ok && !exited(bg) && apiVersions.length > 0;
      if (!restOk) {
        const inUse = addrInUse(tailFile(logs.slurmrestd, 40));
        await bg.stop(500);
        if (!inUse || attempt === 4) throw fail(`slurmrestd on 127.0.0.1:${restPort} not ready (last: ${last})`);
      }
    }
    const num = (v: string): number[] => v.slice(1).split(".").map(Number);
    apiVersions.sort((a, b) => {
      const x = num(a);
      const y = num(b);
      return x[0]! - y[0]! || x[1]! - y[1]! || x[2]! - y[2]!;
    });
    lab.apiVersions = apiVersions;
    lab.apiVersion = apiVersions[apiVersions.length - 1]!;
    lab.restPort = restPort;
    lab.restUrl = `http://127.0.0.1:${restPort}`;
    lab.startMs.daemons = Date.now() - started;

    if (opts.waitForScheduler !== false) {
      // diag's schedule_cycle_total turns 1 after the first pass (field absent: do not wait)
      let cycles: unknown;
      const ran = await waitUntil(
        async () => {
          const r = await rest("GET", `/slurm/${lab.apiVersion}/diag`, { timeoutMs: 5000 });
          cycles = (r.json as { statistics?: { schedule_cycle_total?: unknown } } | undefined)?.statistics?.schedule_cycle_total;
          return r.status === 200 && (typeof cycles !== "number" || cycles > 0);
        },
        Math.max(stepMs, 10_000),
        50,
      );
      if (!ran) throw fail(`slurmctld ran no scheduling pass within ${Math.max(stepMs, 10_000)} ms (schedule_cycle_total ${String(cycles)})`);
    }
  } catch (e) {
    await lab.cleanup();
    throw e;
  }
  lab.startMs.ready = Date.now() - started;
  return lab;
}

/** Poll until the job's state is one of `states` (CLI: squeue -t all); returns the last state seen. */
export async function waitJobState(lab: SlurmLab, jobId: number | string, states: string[], timeoutMs = 30_000): Promise<string> {
  let state = "";
  await waitUntil(
    async () => {
      const r = await lab.run(["squeue", "-h", "-t", "all", "-j", String(jobId), "-o", "%T"], { timeoutMs: 15_000 });
      state = r.stdout.trim();
      return states.includes(state);
    },
    timeoutMs,
    20,
  );
  return state;
}

