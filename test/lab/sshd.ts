// A private OpenSSH server on 127.0.0.1 for remote-build tests.
//
// Given a NixLab, sshd's SetEnv gives every session only what stands in for the
// node's own system: its Nix installation's configuration (NIX_CONF_DIR, state,
// log dir, daemon socket) and the account's home. NOT the store directory: a
// real site's sshd sets no NIX_STORE_DIR, so whoever runs a remote nix command
// must say it (nsh does; for Nix's own ssh:// stores, the builder's remote-program sets it: see
// builderUri). A chroot store `local?root=<lab>/r` then acts as a
// separate remote store (Nix forces the sandbox for chroot stores; the lab's
// nix.conf has the sandbox-paths that make /bin/sh work there).
//
// Verified incantation for Nix's own build-remote (Nix 2.8, ~0.35 s per build):
//   NIX_SSHOPTS="-F <configFile>" nix-build remote.nix --argstr salt <random> \
//     --no-out-link --option max-jobs 0 \
//     --builders 'ssh://<alias>?remote-store=local?root=<lab>/r x86_64-linux'
// (= buildersLine(sshd)). Single-user: NIX_SSHOPTS in the client env. With
// `--store daemon` the hook runs inside the daemon with the *daemon's*
// environment, so NIX_SSHOPTS must be given to lab.startDaemon({ NIX_SSHOPTS })
// (otherwise ssh cannot resolve the alias and Nix only says "unable to start
// any build; remote machines may not have all required system features").
// ssh-ng://<alias>?remote-store=... works the same way.
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { aptInstall } from "./apt.ts";
import type { NixLab } from "./nix.ts";
import {
  type Background,
  registerRoot,
  removeTree,
  runCommand,
  spawnBackground,
  sweepMarker,
  tailFile,
  unregisterRoot,
  waitUntil,
} from "./proc.ts";

const SSHD = "/usr/sbin/sshd";
const SYS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export interface SshdOptions {
  /** Host alias in the client config, default "nshlab" (never "localhost": Nix skips ssh for it) */
  alias?: string;
  /** extra variables for sessions (sshd SetEnv) */
  setEnv?: Record<string, string>;
  /** chroot dir of the remote store, default <lab.root>/r (or <sshd dir>/r) */
  remoteRoot?: string;
}

export interface SshdLab {
  port: number;
  alias: string;
  /** directory holding keys, configs, log and pid file */
  dir: string;
  configFile: string;
  sshdConfigFile: string;
  knownHosts: string;
  identityFile: string;
  /** "ssh-ed25519 AAAA..." (no comment) */
  hostPublicKey: string;
  pid: number;
  logFile: string;
  /** value for NIX_SSHOPTS */
  sshOpts: string;
  /** chroot dir and store URI of the separate "remote" store */
  remoteRoot: string;
  remoteStore: string;
  /** The lab's store directory (undefined without a lab), which a remote nix command must be told. */
  storeDir?: string;
  /** The builder's nix-store / nix-daemon for Nix's own ssh stores (remote-program), knowing storeDir. */
  remotePrograms?: { ssh: string; "ssh-ng": string };
  stop(): Promise<void>;
}

export async function ensureSsh(): Promise<void> {
  const have = (c: string): boolean => Bun.which(c, { PATH: `${process.env.PATH ?? ""}:${SYS_PATH}` }) !== null;
  if (fs.existsSync(SSHD) && have("ssh") && have("ssh-keygen")) return;
  await aptInstall(["openssh-server", "openssh-client"]);
  if (!fs.existsSync(SSHD)) throw new Error(`ensureSsh: ${SSHD} missing after installing openssh-server`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * The part of the lab's environment a session on the "node" gets, each standing in for something
 * a real node has on its own: NIX_CONF_DIR, NIX_STATE_DIR, NIX_LOG_DIR, NIX_USER_CONF_FILES and
 * NIX_DAEMON_SOCKET_PATH for its Nix installation (/etc/nix, /nix/var/nix, …: not the real host's
 * here), HOME for the account's home (a real sshd sets it from passwd), and the lab's markers for
 * the cleanup sweep (NSH_*; no program reads them). Left out: NIX_STORE_DIR (the store directory
 * is nsh's store-dir setting, which nsh must pass itself), TMPDIR and XDG_* (no real sshd sets them;
 * the XDG defaults follow HOME anyway).
 */
function nodeSystemEnv(env: Record<string, string>): Record<string, string> {
  const keep = ["HOME", "NIX_CONF_DIR", "NIX_STATE_DIR", "NIX_LOG_DIR", "NIX_USER_CONF_FILES", "NIX_DAEMON_SOCKET_PATH"];
  const markers = ["NSH_LAB_ROOT", "NSH_SSHD"];
  return Object.fromEntries(Object.entries(env).filter(([k]) => keep.includes(k) || markers.includes(k)));
}

const quote = (v: string): string => `"${v.replace(/(["\\])/g, "\\$1")}"`;

async function keygen(file: string, env: Record<string, string>): Promise<void> {
  const r = await runCommand(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "nsh-lab", "-f", file], {
    env,
    timeoutMs: 30_000,
  });
  if (r.code !== 0) throw new Error(`ssh-keygen ${file} failed: ${r.stderr}`);
}

export async function startSshd(lab?: NixLab, opts: SshdOptions = {}): Promise<SshdLab> {
  await ensureSsh();
  // sshd refuses to start without its privilege separation directory.
  fs.mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
  const alias = opts.alias ?? "nshlab";
  const dir = lab ? fs.mkdtempSync(path.join(lab.root, "sshd-")) : fs.mkdtempSync(path.join(os.tmpdir(), "nsh-sshd-"));
  if (!lab) registerRoot(dir, true);
  const remoteRoot = opts.remoteRoot ?? path.join(lab ? lab.root : dir, "r");
  fs.mkdirSync(remoteRoot, { recursive: true });

  // NSH_SSHD marks sshd and all its sessions for the sweep in stop().
  const baseEnv: Record<string, string> = lab ? { ...lab.env } : { PATH: process.env.PATH ?? SYS_PATH };
  baseEnv.NSH_SSHD = dir;
  const hostKey = path.join(dir, "host_ed25519");
  const identityFile = path.join(dir, "id_ed25519");
  await keygen(hostKey, baseEnv);
  await keygen(identityFile, baseEnv);
  const hostPublicKey = fs.readFileSync(`${hostKey}.pub`, "utf8").trim().split(/\s+/).slice(0, 2).join(" ");
  const authorized = path.join(dir, "authorized_keys");
  fs.copyFileSync(`${identityFile}.pub`, authorized);
  fs.chmodSync(authorized, 0o600);
  // HostKeyAlias: known_hosts is keyed by the alias, so it also matches the
  // temporary known_hosts Nix writes for a pinned key (machines column 8).
  const knownHosts = path.join(dir, "known_hosts");
  fs.writeFileSync(knownHosts, `${alias} ${hostPublicKey}\n`);

  // A lab running a root's Nix (roots.ts): sessions get its wrappers too (the node's own PATH).
  const sessionPath = lab?.binDir ? `${lab.binDir}:${SYS_PATH}` : SYS_PATH;
  const sessionEnv: Record<string, string> = { ...nodeSystemEnv(baseEnv), PATH: sessionPath, ...opts.setEnv };
  const setEnv = Object.entries(sessionEnv)
    .map(([k, v]) => `${k}=${quote(v)}`)
    .join(" ");
  const sshdConfigFile = path.join(dir, "sshd_config");
  const configFile = path.join(dir, "ssh_config");
  const logFile = path.join(dir, "sshd.log");
  const pidFile = path.join(dir, "sshd.pid");

  let bg: Background | undefined;
  let port = 0;
  // A free port can be taken between probing and binding: retry a few times.
  for (let attempt = 0; attempt < 5 && !bg; attempt++) {
    port = await freePort();
    fs.writeFileSync(
      sshdConfigFile,
      [
        `Port ${port}`,
        "ListenAddress 127.0.0.1",
        `HostKey ${hostKey}`,
        `PidFile ${pidFile}`,
        `AuthorizedKeysFile ${authorized}`,
        "PermitRootLogin prohibit-password",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "StrictModes no",
        "PrintMotd no",
        "UseDNS no",
        "MaxStartups 64:30:128",
        "MaxSessions 64",
        `SetEnv ${setEnv}`,
        "",
      ].join("\n"),
    );
    fs.writeFileSync(logFile, "");
    // -D: stay in the foreground so we own the PID; absolute paths because
    // sshd re-execs itself after chdir("/").
    const cand = spawnBackground([SSHD, "-D", "-f", sshdConfigFile, "-E", logFile], baseEnv, path.join(dir, "sshd.out"), dir);
    const exited = (): boolean => cand.proc.exitCode !== null || cand.proc.signalCode !== null;
    const ready = await waitUntil(() => exited() || tailFile(logFile, 50).includes("Server listening"), 10_000);
    if (ready && !exited()) bg = cand;
    else await cand.stop(500);
  }
  if (!bg) {
    if (!lab) {
      removeTree(dir);
      unregisterRoot(dir);
    }
    throw new Error(`sshd did not start (last port ${port}); log:\n${tailFile(logFile)}\n${tailFile(path.join(dir, "sshd.out"))}`);
  }

  fs.writeFileSync(
    configFile,
    [
      `Host ${alias}`,
      "  HostName 127.0.0.1",
      `  Port ${port}`,
      "  User root",
      `  IdentityFile ${identityFile}`,
      "  IdentitiesOnly yes",
      `  HostKeyAlias ${alias}`,
      `  UserKnownHostsFile ${knownHosts}`,
      "  GlobalKnownHostsFile /dev/null",
      "  StrictHostKeyChecking yes",
      "  BatchMode yes",
      "  ControlMaster no",
      "  ControlPath none",
      "  ConnectTimeout 10",
      "  LogLevel ERROR",
      "",
    ].join("\n"),
  );

  const server = bg;
  let stopped = false;
  const sshd: SshdLab = {
    port,
    alias,
    dir,
    configFile,
    sshdConfigFile,
    knownHosts,
    identityFile,
    hostPublicKey,
    pid: server.pid,
    logFile,
    sshOpts: `-F ${configFile}`,
    remoteRoot,
    remoteStore: `local?root=${remoteRoot}`,
    storeDir: lab?.storeDir,
    remotePrograms: lab ? builderPrograms(dir, lab.storeDir) : undefined,
    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      await server.stop(2000);
      // sessions (sshd children, remote nix-store --serve) outlive the listener
      await sweepMarker(dir, 1000);
      if (!lab) {
        removeTree(dir);
        unregisterRoot(dir);
      }
    },
  };
  lab?.addCleanup(() => sshd.stop());
  return sshd;
}

/**
 * The ssh builder's own nix-store and nix-daemon: they know the lab's store directory as a real
 * builder's Nix knows its own. (Not `&store=` in remote-store: Nix 2.26 and 2.34 pass remote-store
 * to the remote shell unquoted, so a `&` there ends the command; 2.8 quoted it.)
 */
function builderPrograms(dir: string, storeDir: string): { ssh: string; "ssh-ng": string } {
  const write = (name: string): string => {
    const file = path.join(dir, `builder-${name}`);
    fs.writeFileSync(file, `#!/bin/sh\nNIX_STORE_DIR=${quote(storeDir)} exec ${name} "$@"\n`, { mode: 0o755 });
    return file;
  };
  return { ssh: write("nix-store"), "ssh-ng": write("nix-daemon") };
}

// Nix splits a query on '&' and percent-decodes values (checked on 2.8), so escape only what would
// break that, and '=' as Nix 2.34 does when it prints a store URI ('?' and '/' stay readable).
const escapeQueryValue = (v: string): string =>
  v.replace(/[%&#+ =]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

export interface BuilderUriOptions {
  /** remote store for nix-store --serve / nix-daemon --stdio; default sshd.remoteStore; null = the remote's default store */
  remoteStore?: string | null;
  protocol?: "ssh" | "ssh-ng";
  /** the builder's nix-store (ssh) or nix-daemon (ssh-ng) command: remote-program */
  remoteProgram?: string;
}

/**
 * Store URI of the sshd as a remote builder, e.g.
 * ssh://nshlab?remote-store=local?root=/tmp/nsh-lab-x/r&remote-program=/tmp/nsh-lab-x/sshd-y/builder-nix-store:
 * the builder's remote-program (sshd.remotePrograms) tells the remote the lab's store directory (the
 * sshd gives sessions no NIX_STORE_DIR, like a real one), unless remote-store says `store=` or is null.
 */
export function builderUri(sshd: SshdLab, opts: BuilderUriOptions = {}): string {
  const store = opts.remoteStore === undefined ? sshd.remoteStore : opts.remoteStore;
  const protocol = opts.protocol ?? "ssh";
  const ownStoreDir = store !== null && !/[?&]store=/.test(store);
  const program = opts.remoteProgram ?? (ownStoreDir ? sshd.remotePrograms?.[protocol] : undefined);
  const params = [
    ...(store === null ? [] : [`remote-store=${escapeQueryValue(store)}`]),
    ...(program ? [`remote-program=${escapeQueryValue(program)}`] : []),
  ];
  const base = `${protocol}://${sshd.alias}`;
  // Sorted, as Nix 2.34 prints it (2.8 prints what it was given): the same in both.
  return params.length === 0 ? base : `${base}?${params.sort().join("&")}`;
}

export interface BuildersLineOptions extends BuilderUriOptions {
  systems?: string[];
  maxJobs?: number;
  speedFactor?: number;
  features?: string[];
  mandatoryFeatures?: string[];
}

/** One machines line for --builders: uri systems key maxJobs speed features mandatory hostKey. */
export function buildersLine(sshd: SshdLab, opts: BuildersLineOptions = {}): string {
  const list = (xs: string[] | undefined): string => (xs && xs.length > 0 ? xs.join(",") : "-");
  return [
    builderUri(sshd, opts),
    list(opts.systems ?? [`${process.arch === "arm64" ? "aarch64" : "x86_64"}-linux`]),
    "-", // identity comes from the ssh config (NIX_SSHOPTS)
    String(opts.maxJobs ?? 1),
    String(opts.speedFactor ?? 1),
    list(opts.features),
    list(opts.mandatoryFeatures),
    "-",
  ].join(" ");
}
