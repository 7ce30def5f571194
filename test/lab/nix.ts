// Private Nix instances for tests and the demo: the host's Nix 2.8, or a Debian root's (NSH_LAB_SUITE, roots.ts).
//
// Each lab is a fresh mkdtemp dir with its own store, state, log and conf dirs
// and daemon socket, so several test files can run labs side by side. Layout
// (kept short: unix socket paths are limited to 108 bytes):
//   <root>/s     logical store dir (NIX_STORE_DIR)
//   <root>/var   state dir; <root>/var/daemon-socket/socket is the socket
//   <root>/log   log dir         <root>/etc  NIX_CONF_DIR (nix.conf)
//   <root>/home  HOME, XDG dirs  <root>/tmp  TMPDIR (build dirs land here)
//   <root>/daemon.log            nix-daemon stdout/stderr
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { aptInstall } from "./apt.ts";
import { hostNixVersion, type LabRoot, selectedRoot, type Suite, versionNumbers, writeRootBin } from "./roots.ts";
import {
  accepts,
  type Background,
  registerRoot,
  registerRootNamespace,
  removeTree,
  runCommand,
  type RunOptions,
  type RunResult,
  spawnBackground,
  sweepMarker,
  tailFile,
  unregisterRoot,
  waitUntil,
} from "./proc.ts";

export type { RunOptions, RunResult } from "./proc.ts";

export const EXPR_DIR = path.join(import.meta.dir, "expr");
const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// sandbox-paths only matters when a build is sandboxed: chroot stores
// (`local?root=...`, used as the "remote" store) force the sandbox, and
// without these binds `builder = "/bin/sh"` fails with ENOENT.
const BASE_CONF = `build-users-group =
sandbox = false
sandbox-paths = /bin=/usr/bin /usr/bin /lib=/usr/lib /usr/lib /lib64=/usr/lib64
substituters =
flake-registry =
experimental-features = nix-command flakes
fsync-metadata = false
`;

export interface NixLabOptions {
  /** start nix-daemon right away */
  daemon?: boolean;
  /** appended to the lab's nix.conf */
  extraConf?: string;
  /** short label used in the temp dir name */
  name?: string;
  /** extra environment for the daemon (e.g. NIX_SSHOPTS for build-remote) */
  daemonEnv?: Record<string, string>;
  /** which Nix: default NSH_LAB_SUITE (bookworm = the host's); trixie/sid run from a root (roots.ts) */
  suite?: Suite;
}

/** What a root's Nix is called by (wrappers in <lab>/bin, first on the lab's PATH). */
const NIX_TOOLS = [
  "nix", "nix-build", "nix-store", "nix-instantiate", "nix-env", "nix-daemon", "nix-shell",
  "nix-collect-garbage", "nix-copy-closure", "nix-hash", "nix-prefetch-url", "nix-channel",
];

export interface NixLab {
  root: string;
  /** which Nix runs: the host's (bookworm) or a debootstrap root's (NSH_LAB_SUITE, roots.ts) */
  suite: Suite;
  /** `nix --version`, e.g. "nix (Nix) 2.8.0" */
  nixVersion: string;
  /** [major, minor, patch] of nixVersion, for tests that branch on known differences */
  nixVersionNumbers: number[];
  /** the root's wrappers (NSH_LAB_SUITE other than bookworm), first on env.PATH; else undefined */
  binDir?: string;
  storeDir: string;
  stateDir: string;
  confDir: string;
  logDir: string;
  /** NIX_DAEMON_SOCKET_PATH */
  socket: string;
  /** client environment; NIX_REMOTE is not set (root + writable state = local store; use --store daemon) */
  env: Record<string, string>;
  daemonPid?: number;
  daemonLog: string;
  /** (re)start nix-daemon; `env` is added to its environment */
  startDaemon(env?: Record<string, string>): Promise<void>;
  /** SIGTERM the daemon's group, SIGKILL after 3 s. Per-connection children
   *  (own sessions) end with their clients; cleanup() sweeps any left over. */
  stopDaemon(): Promise<void>;
  run(argv: string[], opts?: RunOptions): Promise<RunResult>;
  /** absolute path of test/lab/expr/<name>(.nix) */
  expr(name: string): string;
  /** run fn (e.g. sshd.stop) during cleanup(), before the sweep */
  addCleanup(fn: () => Promise<void> | void): void;
  /** stop everything this lab started (by PID), then remove the directory */
  cleanup(): Promise<void>;
}

const which = (cmd: string): boolean => Bun.which(cmd, { PATH: process.env.PATH ?? DEFAULT_PATH }) !== null;

/** Install Debian's nix-bin (Nix 2.8) if nix-store / nix-daemon are missing. */
export async function ensureNix(): Promise<void> {
  if (which("nix-store") && which("nix-daemon")) return;
  try {
    await aptInstall(["nix-bin"]);
  } catch (e) {
    throw new Error(`ensureNix: could not install nix-bin: ${(e as Error).message}`);
  }
  if (!which("nix-store") || !which("nix-daemon")) {
    throw new Error("ensureNix: nix-bin installed but nix-store/nix-daemon are still not on PATH");
  }
}

export function exprPath(name: string): string {
  const file = path.join(EXPR_DIR, name.endsWith(".nix") ? name : `${name}.nix`);
  if (!fs.existsSync(file)) throw new Error(`no lab expression ${file}`);
  return file;
}

/** True once something accepts a connection on the unix socket. */
export function socketAccepts(socketPath: string, timeoutMs = 500): Promise<boolean> {
  return accepts({ path: socketPath }, timeoutMs);
}

export async function startNixLab(opts: NixLabOptions = {}): Promise<NixLab> {
  const labRoot: LabRoot | undefined = await selectedRoot(opts.suite);
  if (!labRoot) await ensureNix();
  const label = (opts.name ?? "").replace(/[^A-Za-z0-9_-]/g, "").slice(0, 12);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), label ? `nsh-lab-${label}-` : "nsh-lab-"));
  registerRoot(root, true);

  const storeDir = path.join(root, "s");
  const stateDir = path.join(root, "var");
  const logDir = path.join(root, "log");
  const confDir = path.join(root, "etc");
  const home = path.join(root, "home");
  const tmp = path.join(root, "tmp");
  const socket = path.join(stateDir, "daemon-socket", "socket");
  const daemonLog = path.join(root, "daemon.log");
  // Pre-create the state dir: a daemon whose state dir is missing can end up
  // connecting to its own socket (fork loop; see nix-lab.md).
  for (const d of [storeDir, path.dirname(socket), logDir, confDir, home, tmp]) fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(path.join(confDir, "nix.conf"), BASE_CONF + (opts.extraConf ? `${opts.extraConf}\n` : ""));
  const userConf = path.join(confDir, "user.conf");
  fs.writeFileSync(userConf, ""); // NIX_USER_CONF_FILES: ignore ~/.config/nix

  // A root's Nix: wrappers that enter the root (same PID), first on PATH.
  const binDir = labRoot ? path.join(root, "bin") : undefined;
  const tools = labRoot && binDir ? writeRootBin(labRoot, binDir, NIX_TOOLS) : {};
  const nixVersion = labRoot ? labRoot.nixVersion : await hostNixVersion();
  const env: Record<string, string> = {
    PATH: binDir ? `${binDir}:${process.env.PATH ?? DEFAULT_PATH}` : (process.env.PATH ?? DEFAULT_PATH),
    HOME: home,
    TMPDIR: tmp,
    XDG_CONFIG_HOME: path.join(home, ".config"),
    XDG_CACHE_HOME: path.join(home, ".cache"),
    XDG_DATA_HOME: path.join(home, ".local/share"),
    XDG_STATE_HOME: path.join(home, ".local/state"),
    NIX_STORE_DIR: storeDir,
    NIX_STATE_DIR: stateDir,
    NIX_LOG_DIR: logDir,
    NIX_CONF_DIR: confDir,
    NIX_USER_CONF_FILES: userConf,
    NIX_DAEMON_SOCKET_PATH: socket,
    // marker for the /proc environ sweep (see proc.ts)
    NSH_LAB_ROOT: root,
  };

  let daemon: Background | undefined;
  const cleanups: Array<() => Promise<void> | void> = [];
  let cleaned = false;

  const lab: NixLab = {
    root,
    suite: labRoot?.suite ?? "bookworm",
    nixVersion,
    nixVersionNumbers: versionNumbers(nixVersion),
    binDir,
    storeDir,
    stateDir,
    confDir,
    logDir,
    socket,
    env,
    daemonPid: undefined,
    daemonLog,

    async startDaemon(extraEnv: Record<string, string> = {}): Promise<void> {
      if (daemon) await lab.stopDaemon();
      fs.appendFileSync(daemonLog, `--- starting nix-daemon ${new Date().toISOString()}\n`);
      // NIX_REMOTE=local: never let the daemon's own store resolve to itself.
      const bg = spawnBackground([tools["nix-daemon"] ?? "nix-daemon"], { ...env, ...extraEnv, NIX_REMOTE: "local" }, daemonLog, root);
      daemon = bg;
      lab.daemonPid = bg.pid;
      const ok = await waitUntil(
        async () => bg.proc.exitCode !== null || bg.proc.signalCode !== null || (await socketAccepts(socket)),
        15_000,
      );
      const died = bg.proc.exitCode !== null || bg.proc.signalCode !== null;
      // a root's daemon: its private mount namespace marks its builders (they get a clean environment)
      if (ok && !died && labRoot) registerRootNamespace(root, bg.pid);
      if (!ok || died) {
        await lab.stopDaemon();
        const why = died ? `exited (code ${bg.proc.exitCode}, signal ${bg.proc.signalCode})` : "did not accept connections within 15 s";
        throw new Error(`nix-daemon for lab ${root} ${why}; socket ${socket}; log tail:\n${tailFile(daemonLog)}`);
      }
    },

    async stopDaemon(): Promise<void> {
      const bg = daemon;
      if (!bg) return;
      daemon = undefined;
      lab.daemonPid = undefined;
      await bg.stop(3000);
      // Stale socket file would make a later readiness probe misleading.
      fs.rmSync(socket, { force: true });
    },

    run(argv: string[], runOpts: RunOptions = {}): Promise<RunResult> {
      // the root's tool by its wrapper's path: Bun resolves a bare argv[0] on the runner's PATH
      const cmd = [tools[argv[0] ?? ""] ?? argv[0]!, ...argv.slice(1)];
      return runCommand(cmd, { ...runOpts, env: { ...env, ...runOpts.env }, cwd: runOpts.cwd ?? home });
    },

    expr: exprPath,

    addCleanup(fn): void {
      cleanups.push(fn);
    },

    async cleanup(): Promise<void> {
      if (cleaned) return;
      cleaned = true;
      for (const fn of cleanups.reverse()) {
        try {
          await fn();
        } catch {
          // keep going: the sweep below still stops everything
        }
      }
      await lab.stopDaemon();
      // Daemon connection children and builders run in their own sessions.
      await sweepMarker(root);
      removeTree(root);
      unregisterRoot(root);
    },
  };

  if (opts.daemon) {
    try {
      await lab.startDaemon(opts.daemonEnv);
    } catch (e) {
      await lab.cleanup();
      throw e;
    }
  }
  return lab;
}
