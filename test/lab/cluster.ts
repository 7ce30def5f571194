// The whole lab for the scheduler hook: a private Nix (daemon) whose build hook is nsh, a private
// single-node Slurm with slurmrestd, and an sshd standing for both the login host and the node
// (the node's Slurm name, the machine's hostname, resolves to it through a private ssh config).
// The backend nsh drives Slurm through is a parameter, by default NSH_TEST_BACKEND (else slurm):
// slurm (slurmrestd + JWT), slurm-cli (sbatch & co. on PATH) or slurm-native (libslurm; its shim
// is compiled into the lab's state dir on first use). The last two reach the login host as
// localhost, their default, which the lab's ssh config maps to its sshd.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { startNixLab, type NixLab } from "./nix.ts";
import { startSlurmLab } from "./slurm.ts";
import type { SlurmLab } from "./slurm-types.ts";
import { startSshd, type SshdLab } from "./sshd.ts";
import { ensureLibslurmDev } from "./libslurm-dev.ts";

export const BACKENDS = ["slurm", "slurm-cli", "slurm-native"] as const;
export type Backend = (typeof BACKENDS)[number];

/** NSH_TEST_BACKEND, else slurm (the REST backend); anything else is a mistake said at once. */
export function testBackend(env: Record<string, string | undefined> = process.env): Backend {
  const b = env.NSH_TEST_BACKEND?.trim() || "slurm";
  if (!(BACKENDS as readonly string[]).includes(b)) throw new Error(`NSH_TEST_BACKEND=${b}: expected one of ${BACKENDS.join(", ")}`);
  return b as Backend;
}

export const NSH_BIN = path.join(import.meta.dir, "..", "..", "dist", "nsh");

export interface ClusterLab {
  backend: Backend;
  /** the derivation attribute of per-build parameters for this backend */
  paramsAttr: string;
  /** what Nix shows as the machine: `building '…' on '<machine>'` */
  machine: string;
  nix: NixLab;
  slurm: SlurmLab;
  sshd: SshdLab;
  /** The nsh.conf the hook reads (NSH_CONF in the daemon's environment). */
  nshConf: string;
  sshConfig: string;
  /** The node's remote store (a chroot store). */
  nodeStore: string;
  clusterState: string;
  /** Rewrites nsh.conf: the base settings plus `extra` lines. */
  writeConf(extra?: string): void;
  /** nix-build through the daemon with nsh as build hook. */
  nixBuild(args: string[], timeoutMs?: number): ReturnType<NixLab["run"]>;
  cleanup(): Promise<void>;
}

/** The nsh.conf lines that choose and reach the scheduler. */
function schedulerLines(backend: Backend, slurm: SlurmLab, tokenFile: string): string[] {
  if (backend === "slurm-cli") return ["job-scheduler = slurm-cli", `slurm-conf = ${slurm.confFile}`];
  if (backend === "slurm-native") return ["job-scheduler = slurm-native", `slurm-conf = ${slurm.confFile}`];
  return [
    "job-scheduler = slurm",
    "slurm-api-host = 127.0.0.1",
    `slurm-api-port = ${slurm.restPort}`,
    `slurm-jwt-token-file = ${tokenFile}`,
  ];
}

/** `daemonEnv`: more environment for the nix-daemon, so for the hooks it starts (NSH_DEBUG_LOADED, say). */
export async function startClusterLab(
  name = "cluster", backend: Backend = testBackend(), daemonEnv?: Record<string, string>,
): Promise<ClusterLab> {
  if (!fs.existsSync(NSH_BIN)) throw new Error(`${NSH_BIN} is missing: npm run build first`);
  if (backend === "slurm-native") await ensureLibslurmDev();
  const nix = await startNixLab({ name });
  const sshd = await startSshd(nix);
  const slurm = await startSlurmLab({ name });
  nix.addCleanup(() => slurm.cleanup());
  const node = os.hostname().split(".")[0]!;
  const sshConfig = path.join(nix.root, "cluster.ssh_config");
  // The node by its Slurm name and the login host by the API host's name both reach the lab sshd.
  fs.writeFileSync(sshConfig, fs.readFileSync(sshd.configFile, "utf8").replace(`Host ${sshd.alias}`, `Host ${sshd.alias} ${node} 127.0.0.1 localhost`));
  const tokenFile = path.join(nix.root, "slurm.jwt");
  fs.writeFileSync(tokenFile, `${await slurm.token("root", 6 * 3600)}\n`, { mode: 0o600 });
  const clusterState = path.join(nix.root, "cluster-state");
  const nodeStore = `local?root=${path.join(nix.root, "node")}`;
  // A site's node store exists before any build; a fresh one made by many nix-store --serve at once
  // can be left with a truncated db/schema (Nix 2.8 writes it in place: "schema is corrupt").
  const init = await nix.run(["nix-store", "--init", "--store", nodeStore]);
  if (init.code !== 0) throw new Error(`nix-store --init --store ${nodeStore}: ${init.stderr}`);
  const nshConf = path.join(nix.root, "nsh.conf");
  const writeConf = (extra = "") =>
    fs.writeFileSync(
      nshConf,
      [
        ...schedulerLines(backend, slurm, tokenFile),
        `system = ${process.arch === "arm64" ? "aarch64" : "x86_64"}-linux`,
        `slurm-state-dir = ${clusterState}`,
        `remote-store = ${nodeStore}`,
        `store-dir = ${nix.storeDir}`,
        `job-environment = NIX_CONF_DIR=${nix.confDir}`,
        `ssh-config = ${sshConfig}`,
        `state-dir = ${path.join(nix.root, "nsh-state")}`,
        extra,
        "",
      ].join("\n"),
    );
  writeConf();
  await nix.startDaemon({ ...daemonEnv, NSH_CONF: nshConf, NIX_SSHOPTS: `-F ${sshConfig}` });
  return {
    backend,
    paramsAttr: backend === "slurm-native" ? "slurmNativeConstraints" : "extraSlurmParams",
    machine: backend === "slurm" ? "slurm:127.0.0.1" : backend,
    nix,
    slurm,
    sshd,
    nshConf,
    sshConfig,
    nodeStore,
    clusterState,
    writeConf,
    nixBuild: (args, timeoutMs = 120000) => nix.run(["nix-build", "--store", "daemon", "--option", "build-hook", NSH_BIN, "--no-out-link", ...args], { timeoutMs }),
    cleanup: () => nix.cleanup(),
  };
}
