// A private single-node Slurm (Debian 12: Slurm 22.05) for tests: its own
// munged, slurmctld, slurmd and slurmrestd (JWT), all under one mkdtemp dir.
// This file is the runner; slurm-conf.ts holds the pure parts (slurm.conf,
// JWT), slurm-host.ts the host helpers, slurm-types.ts the types.
// NSH_LAB_SUITE=trixie|sid runs Slurm 24.11 / 26.05 from a Debian root instead (roots.ts).
//
// Facts this relies on (checked on Debian 12, Slurm 22.05.8, munge 0.5.15,
// root, no systemd; see also shared/reference/slurm-lab.md):
// * SLURM_CONF is honoured by slurmctld, slurmd, slurmrestd (also its
//   `-s list`), sbatch, squeue, sinfo, scontrol, scancel and libslurm;
//   /etc/slurm/slurm.conf is never needed. slurmstepd gets its config from
//   slurmd, and Slurm puts SLURM_CONF=<our conf> into every job's
//   environment (also for REST jobs with an explicit `environment`).
// * munge: a private munged runs as root with its own key and socket
//   (`munged -F --socket=... --key-file=...`). The socket's directory must be
//   world-executable ("Socket is inaccessible" otherwise), the key 0600.
// * Two labs run side by side: separate munge keys/sockets, ports, state and
//   spool dirs; both nodes may carry the machine's hostname because each
//   slurmd talks only to its own slurmctld (NodeAddr=127.0.0.1, own ports).
// * slurmrestd refuses root (and SlurmUser); `-u UID -g GID` (default the
//   user `nobody`) lets it bind as root and then drop privileges, so the
//   spawned PID is slurmrestd itself. It needs SLURM_JWT=daemon for
//   rest_auth/jwt and must not load the openapi/dbv* plugins without slurmdbd
//   (fatal), so the plugin list comes from `slurmrestd -s list` minus those.
// * Process tracking: the daemons run in the foreground (-D/-F) under
//   spawnBackground, and everything a lab starts carries the marker
//   (NSH_SLURM_LAB / SLURM_CONF under <root>): slurmstepd inherits slurmd's
//   environment and jobs get SLURM_CONF, so the marker sweep (and the
//   watchdog after a crash) finds orphaned slurmstepd and job processes.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { socketAccepts } from "./nix.ts";
import { hostSlurmVersion, selectedRoot, versionNumbers, writeRootBin } from "./roots.ts";
import {
  type Background,
  isAlive,
  registerRoot,
  registerRootNamespace,
  removeTree,
  runCommand,
  type RunOptions,
  type RunResult,
  spawnBackground,
  sweepMarker,
  tailFile,
  signalSnapshot,
  snapshot,
  startTimeOf,
  unregisterRoot,
  waitUntil,
} from "./proc.ts";
import { addrInUse, apiVersionsFromOpenapi, mintSlurmJwt, slurmConf, usableOpenapiPlugins } from "./slurm-conf.ts";
import { ensureSlurm, freePort, labProcesses, labRest, lookupUser, SYS_PATH, tcpAccepts, which } from "./slurm-host.ts";
import type { RestOptions, RestResponse, SlurmLab, SlurmLabOptions, SlurmLabPids } from "./slurm-types.ts";

export { mintSlurmJwt } from "./slurm-conf.ts";
export { ensureSlurm, type EnsureSlurmOptions } from "./slurm-host.ts";
export type { RestOptions, RestResponse, SlurmLab, SlurmLabOptions, SlurmLabPids } from "./slurm-types.ts";

// What a root's Slurm is called by (wrappers in <lab>/bin, first on the lab's PATH).
const SLURM_TOOLS = [
  "munged", "slurmctld", "slurmd", "slurmrestd", "sbatch", "squeue", "sinfo", "scontrol", "scancel", "sacct",
  "srun", "salloc", "sstat", "munge", "unmunge",
];

export async function startSlurmLab(opts: SlurmLabOptions = {}): Promise<SlurmLab> {
  const labRoot = await selectedRoot(opts.suite);
  if (!labRoot) await ensureSlurm();
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
  // Slurm >= 24.11's slurmd will not start without a cgroup filesystem unless told (versions.md)
  if (labRoot) fs.writeFileSync(path.join(confDir, "cgroup.conf"), "CgroupPlugin=disabled\n");
  const binDir = labRoot ? dir("bin", 0o755) : undefined;
  const tools = labRoot && binDir ? writeRootBin(labRoot, binDir, SLURM_TOOLS) : {};
  const bin = (name: string): string => tools[name] ?? which(name) ?? `/usr/sbin/${name}`;
  const slurmVersion = labRoot ? labRoot.slurmVersion : await hostSlurmVersion();
  const withBin = (p: string): string => (binDir ? `${binDir}:${p}` : p);

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
    PATH: withBin(process.env.PATH ?? SYS_PATH),
    SLURM_CONF: confFile,
    NSH_SLURM_LAB: root, // marker for the /proc environ sweep
  };
  const daemonEnv: Record<string, string> = { PATH: withBin(SYS_PATH), LC_ALL: "C", SLURM_CONF: confFile, NSH_SLURM_LAB: root };

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
    runCommand([tools[argv[0] ?? ""] ?? argv[0]!, ...argv.slice(1)], { timeoutMs: 60_000, ...runOpts, env: { ...env, ...runOpts.env }, cwd: runOpts.cwd ?? jobsDir });

  const token = async (user = "root", lifetimeSec = 3600): Promise<string> => mintSlurmJwt(jwtKey, user, lifetimeSec);

  const rest = (method: string, urlPath: string, ro: RestOptions = {}): Promise<RestResponse> =>
    labRest(restPort, (user) => token(user), method, urlPath, ro);

  const stopDaemons = async (): Promise<void> => {
    // Snapshot before anything dies: orphaned job processes get reparented.
    const before = snapshot(labProcesses(root));
    const stopOne = async (name: keyof SlurmLabPids, graceMs: number): Promise<void> => {
      const bg = daemons[name];
      if (bg) await bg.stop(graceMs);
    };
    // slurmctld saves state on SIGTERM (~2 s); the lab's state is disposable.
    await Promise.all([stopOne("slurmrestd", 2000), stopOne("slurmd", 2000), stopOne("slurmctld", 0)]);
    // By the time the daemons are down a PID of the snapshot may name another process (pid_max is 32768).
    signalSnapshot(before, "SIGKILL");
    await sweepMarker(root, 500);
    await stopOne("munged", 2000);
    await waitUntil(() => before.every(({ pid, start }) => !isAlive(pid) || startTimeOf(pid) !== start), 5000);
  };

  const lab: SlurmLab = {
    root,
    suite: labRoot?.suite ?? "bookworm",
    slurmVersion,
    slurmVersionNumbers: versionNumbers(slurmVersion),
    binDir,
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
      bin("munged"),
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
      const ctld = spawn("slurmctld", [bin("slurmctld"), "-D"]);
      // Probe the port, never the CLI: `scontrol ping` against a controller
      // that is not up yet retries for ~9 s.
      const ctldUp = await waitUntil(async () => exited(ctld) || (await tcpAccepts(ctldPort)), stepMs);
      let slurmdOk = false;
      if (ctldUp && !exited(ctld)) {
        const slurmd = spawn("slurmd", [bin("slurmd"), "-D", "-N", nodeName]);
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
    const restd = bin("slurmrestd");
    const ids = ["-u", String(restUser.uid), "-g", String(restUser.gid)];
    let plugins = opts.openapiPlugins;
    if (!plugins) {
      const r = await runCommand([restd, ...ids, "-s", "list"], { env: daemonEnv, timeoutMs: 20_000 });
      plugins = usableOpenapiPlugins(`${r.stdout}\n${r.stderr}`);
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
            apiVersions = apiVersionsFromOpenapi(r.json);
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
    // A root's daemons each run in a private mount namespace; its slurmstepds carry no marker.
    if (labRoot) for (const pid of Object.values(pids)) registerRootNamespace(root, pid);
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

