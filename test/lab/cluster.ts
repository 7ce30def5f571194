// The whole lab for the scheduler hook: a private Nix (daemon) whose build hook is nsh, a private
// single-node Slurm with slurmrestd, and an sshd standing for both the login host and the node
// (the node's Slurm name, the machine's hostname, resolves to it through a private ssh config).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { startNixLab, type NixLab } from "./nix.ts";
import { startSlurmLab } from "./slurm.ts";
import type { SlurmLab } from "./slurm-types.ts";
import { startSshd, type SshdLab } from "./sshd.ts";

export const NSH_BIN = path.join(import.meta.dir, "..", "..", "dist", "nsh");

export interface ClusterLab {
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

export async function startClusterLab(name = "cluster"): Promise<ClusterLab> {
  if (!fs.existsSync(NSH_BIN)) throw new Error(`${NSH_BIN} is missing: npm run build first`);
  const nix = await startNixLab({ name });
  const sshd = await startSshd(nix);
  const slurm = await startSlurmLab({ name });
  nix.addCleanup(() => slurm.cleanup());
  const node = os.hostname().split(".")[0]!;
  const sshConfig = path.join(nix.root, "cluster.ssh_config");
  // The node by its Slurm name and the login host by the API host's name both reach the lab sshd.
  fs.writeFileSync(sshConfig, fs.readFileSync(sshd.configFile, "utf8").replace(`Host ${sshd.alias}`, `Host ${sshd.alias} ${node} 127.0.0.1`));
  const tokenFile = path.join(nix.root, "slurm.jwt");
  fs.writeFileSync(tokenFile, `${await slurm.token("root", 6 * 3600)}\n`, { mode: 0o600 });
  const clusterState = path.join(nix.root, "cluster-state");
  const nodeStore = `local?root=${path.join(nix.root, "node")}`;
  const nshConf = path.join(nix.root, "nsh.conf");
  const writeConf = (extra = "") =>
    fs.writeFileSync(
      nshConf,
      [
        "job-scheduler = slurm",
        `system = ${process.arch === "arm64" ? "aarch64" : "x86_64"}-linux`,
        "slurm-api-host = 127.0.0.1",
        `slurm-api-port = ${slurm.restPort}`,
        `slurm-jwt-token-file = ${tokenFile}`,
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
  await nix.startDaemon({ NSH_CONF: nshConf, NIX_SSHOPTS: `-F ${sshConfig}` });
  return {
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
