// The lab for the hook over PBS: a private Nix 2.8 daemon whose build hook is dist/nsh, the real
// OpenPBS lab (test/lab/pbs.ts: daemons and jobs in a network namespace of their own, node name
// pbs.serverHost), and the lab sshd (test/lab/sshd.ts, 127.0.0.1) standing for both the login
// host and the node. As at a real PBS site, one account does everything on the cluster: the jobs
// run as the PBS user (nshpbs: pbs-user / pbs-cli-user), and the hook's ssh logs in as that same
// user, so the cluster state dir, the agent's job directory and its socket all belong to it.
//
// The node: PBS reports exec_host = serverHost; the ssh config maps that name onto the lab sshd.
// The agent's socket is a path in the shared state dir (unix sockets are files, not part of a
// network namespace), so an sshd outside the namespace reaches the agent inside it just as the
// node's own sshd would.
import fs from "node:fs";
import path from "node:path";
import { NSH_BIN } from "../lab/cluster.ts";
import { type NixLab, startNixLab } from "../lab/nix.ts";
import { type PbsJob, type PbsLab, startPbsLab } from "../lab/pbs.ts";
import { runCommand } from "../lab/proc.ts";
import { type SshdLab, startSshd } from "../lab/sshd.ts";

const SYS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export type PbsKind = "pbs" | "pbs-cli";

export interface PbsHookLab {
  kind: PbsKind;
  nix: NixLab;
  pbs: PbsLab;
  sshd: SshdLab;
  nshConf: string;
  /** the node's store (a chroot store owned by the PBS user) */
  nodeStore: string;
  clusterState: string;
  /** Rewrites nsh.conf: the base settings plus `extra` lines. */
  writeConf(extra?: string): void;
  /** Rewrites nsh.conf: the base settings with some values replaced (or added) instead of repeated. */
  confWith(values: Record<string, string>): void;
  /** the ssh config the hook uses (login host and node) */
  sshConfig: string;
  nixBuild(args: string[], timeoutMs?: number): ReturnType<NixLab["run"]>;
  /** dist/nsh with the hook's nsh.conf and environment */
  nsh(args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  /** PBS's jobs (queued, held, running: not finished) as id → job_state */
  liveJobs(): Promise<Map<string, string>>;
  qstat(id: string): Promise<PbsJob | null>;
  cleanup(): Promise<void>;
}

/** Makes `dir` (and each parent up to `top`) passable by others: the PBS user reaches into the Nix lab. */
function openPath(dir: string, top: string): void {
  for (let d = dir; d.startsWith(top); d = path.dirname(d)) {
    fs.chmodSync(d, fs.statSync(d).mode & 0o7777 | 0o711);
    if (d === top) break;
  }
}

export async function startPbsHookLab(kind: PbsKind, name = `hook-${kind}`): Promise<PbsHookLab> {
  if (!fs.existsSync(NSH_BIN)) throw new Error(`${NSH_BIN} is missing: npm run build first`);
  const nix = await startNixLab({ name });
  const pbs = await startPbsLab();
  nix.addCleanup(async () => void (await pbs.stop()));
  const sshd = await startSshd(nix);
  const user = pbs.user;
  // sshd (UsePAM no) refuses an account whose password is locked ("!", as useradd leaves it):
  // "*" is no password either, but not locked.
  await runCommand(["usermod", "-p", "*", user.name], { env: { PATH: SYS_PATH }, timeoutMs: 30_000 });
  // What the PBS user needs of the lab: its Nix configuration and the sshd's authorized_keys (sshd
  // reads it as the user logging in).
  openPath(nix.confDir, nix.root);
  for (const f of fs.readdirSync(nix.confDir)) fs.chmodSync(path.join(nix.confDir, f), 0o644);
  openPath(sshd.dir, nix.root);
  fs.chmodSync(path.join(sshd.dir, "authorized_keys"), 0o644);
  // The cluster state dir and the node's store belong to the PBS user, as its home would.
  const clusterState = path.join(nix.root, "cluster-state");
  const nodeRoot = path.join(nix.root, "node");
  // The node's Nix state (profiles, gc roots of nix itself) as the PBS user's single-user Nix
  // would keep it: the host's /nix/var belongs to root.
  const nodeVar = path.join(nix.root, "node-var");
  for (const d of [clusterState, nodeRoot, nodeVar]) {
    fs.mkdirSync(d, { mode: 0o755 });
    fs.chownSync(d, user.uid, user.gid);
  }
  const nodeStore = `local?root=${nodeRoot}`;
  // Login host and node (by the name PBS reports) both reach the lab sshd, as the PBS user.
  const sshConfig = path.join(nix.root, "pbs.ssh_config");
  const base = fs.readFileSync(sshd.configFile, "utf8").replace("User root", `User ${user.name}`);
  fs.writeFileSync(sshConfig, base.replace(`Host ${sshd.alias}`, `Host ${sshd.alias} ${pbs.serverHost}`));
  const nshConf = path.join(nix.root, "nsh.conf");
  const userSetting = kind === "pbs" ? "pbs-user" : "pbs-cli-user";
  const writeConf = (extra = "") =>
    fs.writeFileSync(
      nshConf,
      [
        `job-scheduler = ${kind}`,
        `system = ${process.arch === "arm64" ? "aarch64" : "x86_64"}-linux`,
        `${userSetting} = ${user.name}`,
        `slurm-state-dir = ${clusterState}`,
        `login-host = ${sshd.alias}`,
        `remote-store = ${nodeStore}`,
        `store-dir = ${nix.storeDir}`,
        `job-environment = NIX_CONF_DIR=${nix.confDir} NIX_STATE_DIR=${nodeVar} NIX_LOG_DIR=${nodeVar}/log`,
        `ssh-config = ${sshConfig}`,
        `state-dir = ${path.join(nix.root, "nsh-state")}`,
        extra,
        "",
      ].join("\n"),
    );
  writeConf();
  const confWith = (values: Record<string, string>) => {
    writeConf();
    const left = new Map(Object.entries(values));
    const lines = fs.readFileSync(nshConf, "utf8").split("\n").map((l) => {
      const k = l.split("=")[0]!.trim();
      const v = left.get(k);
      if (v === undefined) return l;
      left.delete(k);
      return `${k} = ${v}`;
    });
    fs.writeFileSync(nshConf, `${[...lines, ...[...left].map(([k, v]) => `${k} = ${v}`)].join("\n")}\n`);
  };
  // The hook finds the server, libpbs and the tools through pbs.conf, as on a login node.
  const pbsEnv = { PBS_CONF_FILE: pbs.confFile };
  await nix.startDaemon({ NSH_CONF: nshConf, NIX_SSHOPTS: `-F ${sshConfig}`, ...pbsEnv });
  const hookEnv = { ...nix.env, NSH_CONF: nshConf, ...pbsEnv };
  return {
    kind,
    nix,
    pbs,
    sshd,
    nshConf,
    nodeStore,
    clusterState,
    writeConf,
    confWith,
    sshConfig,
    nixBuild: (args, timeoutMs = 180_000) =>
      nix.run(["nix-build", "--store", "daemon", "--option", "build-hook", NSH_BIN, "--no-out-link", ...args], { timeoutMs }),
    async nsh(args) {
      const p = Bun.spawn([NSH_BIN, ...args], { env: hookEnv, stdio: ["ignore", "pipe", "pipe"] });
      const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
      return { code, stdout, stderr };
    },
    async liveJobs() {
      const r = await pbs.run(["qstat", "-f", "-F", "json"], { timeoutMs: 30_000 });
      const jobs = (JSON.parse(r.stdout || "{}") as { Jobs?: Record<string, PbsJob> }).Jobs ?? {};
      return new Map(Object.entries(jobs).filter(([, j]) => j.job_state !== "F").map(([id, j]) => [id, j.job_state ?? ""]));
    },
    qstat: (id) => pbs.qstat(id),
    cleanup: () => nix.cleanup(),
  };
}
