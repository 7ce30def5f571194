// Types of the private Slurm lab (test/lab/slurm.ts): options, the lab handle, REST calls.
import type { RunOptions, RunResult } from "./proc.ts";

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
  /** which Slurm: default NSH_LAB_SUITE (bookworm = the host's); trixie/sid run from a root (roots.ts) */
  suite?: "bookworm" | "trixie" | "sid";
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
  /** which Slurm runs: the host's (bookworm) or a debootstrap root's (NSH_LAB_SUITE, roots.ts) */
  suite: "bookworm" | "trixie" | "sid";
  /** `slurmctld -V`, e.g. "slurm 22.05.8" */
  slurmVersion: string;
  /** [major, minor, patch] of slurmVersion, for tests that branch on known differences */
  slurmVersionNumbers: number[];
  /** the root's wrappers (NSH_LAB_SUITE other than bookworm), first on env.PATH; else undefined */
  binDir?: string;
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

