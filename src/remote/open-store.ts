// Opening serve protocol sessions: on the local store (a child `nix-store --serve --write`) or on
// the first of several ssh hosts that works, where "works" includes the remote Nix answering the
// handshake, so a host without nix (or with a broken store) falls over to the next one.
import path from "node:path";
import { ServeClient } from "../nix/serve-client.ts";
import type { Destination } from "./destination.ts";
import { spawnDuplex } from "./local-process.ts";
import { shellQuote, SshError, type SshPool } from "./ssh.ts";

export interface RemoteStoreOptions {
  remoteStore?: string;
  nixBinDir?: string;
  /** The store directory the remote Nix must use (NIX_STORE_DIR unless it is /nix/store). */
  storeDir?: string;
  /** More NAME=VALUE for the remote command (job-environment), after NIX_STORE_DIR. */
  environment?: Record<string, string>;
}

export async function openLocalServe(
  opts: { store?: string; nixBinDir?: string; env?: Record<string, string | undefined>; storeDir?: string } = {},
): Promise<ServeClient> {
  const prog = opts.nixBinDir ? path.join(opts.nixBinDir, "nix-store") : "nix-store";
  const argv = [prog, "--serve", "--write", ...(opts.store ? ["--store", opts.store] : [])];
  const describe = opts.store ? `local store ${opts.store}` : "local store";
  const storeDir = opts.storeDir ?? process.env.NIX_STORE_DIR ?? "/nix/store";
  return ServeClient.open(spawnDuplex(argv, { env: opts.env ?? process.env, describe }), storeDir);
}

/**
 * `/usr/bin/env NIX_STORE_DIR=<dir> <bin>/nix-store --serve --write --store '<store>'`:
 * remote-nix-bin-dir, remote-store and the environment apply to every remote command. `env`, not
 * `VAR=x cmd`, for the login shell may be csh; by its path, for the PATH may be bare where nix is not on it.
 */
export function remoteCommand(parts: {
  nixBinDir?: string;
  program: string;
  args: string[];
  store?: string;
  env?: Record<string, string>;
}): string {
  const dir = parts.nixBinDir?.replace(/\/+$/, "");
  const program = dir ? `${dir}/${parts.program}` : parts.program;
  const args = parts.store !== undefined ? [...parts.args, "--store", parts.store] : parts.args;
  const env = Object.entries(parts.env ?? {}).map(([k, v]) => `${k}=${v}`);
  return [...(env.length ? ["/usr/bin/env", ...env] : []), program, ...args].map(shellQuote).join(" ");
}

/**
 * The environment that tells a remote Nix the store directory (store-dir, or the local store's):
 * nsh says it itself, for a node's sshd passes no NIX_STORE_DIR. Nix's own default needs no word
 * (and a node whose Nix was built for another directory keeps its own).
 */
export function storeDirEnv(storeDir: string | undefined): Record<string, string> {
  return storeDir && storeDir.replace(/\/+$/, "") !== "/nix/store" ? { NIX_STORE_DIR: storeDir } : {};
}

export interface OpenedRemote {
  client: ServeClient;
  destination: Destination;
  /** Key for the validity cache: the host and the store on it. */
  cacheKey: string;
}

/** `nix-store --serve --write` on the remote, with remote-nix-bin-dir, remote-store and the store directory applied. */
export function remoteServeCommand(opts: RemoteStoreOptions): string {
  const store = opts.remoteStore && opts.remoteStore !== "auto" ? opts.remoteStore : undefined;
  const env = { ...storeDirEnv(opts.storeDir), ...opts.environment };
  const args = ["--serve", "--write"];
  return remoteCommand({ nixBinDir: opts.nixBinDir, program: "nix-store", args, store, env });
}

export async function openRemoteServe(pool: SshPool, destinations: readonly Destination[], opts: RemoteStoreOptions = {}): Promise<OpenedRemote> {
  const store = opts.remoteStore && opts.remoteStore !== "auto" ? opts.remoteStore : undefined;
  const command = remoteServeCommand(opts);
  const failures: string[] = [];
  for (const d of destinations) {
    try {
      const duplex = await pool.exec([d], command);
      const client = await ServeClient.open(duplex, opts.storeDir ?? "/nix/store");
      return { client, destination: d, cacheKey: `${d.text}?store=${store ?? "auto"}` };
    } catch (e) {
      failures.push(`${d.text}: ${explainServeFailure((e as Error).message, opts)}`);
    }
  }
  if (destinations.length === 1) throw new SshError(`cannot open the Nix store on ${failures[0]}`, failures);
  const listed = failures.map((f) => `  - ${f}`).join("\n");
  throw new SshError(`cannot open the Nix store on any of ${destinations.length} hosts (each was tried in order):\n${listed}`, failures);
}

/** Adds the fix to the usual remote failures. */
export function explainServeFailure(message: string, opts: RemoteStoreOptions): string {
  if (/exit 127|not found/i.test(message) && !/ssh-keyscan|known_hosts/.test(message))
    return `${message} (nix-store is not on the remote PATH: set remote-nix-bin-dir${opts.nixBinDir ? `; ${opts.nixBinDir}/nix-store was tried` : ""})`;
  if (/Permission denied|read-only file system|cannot open connection to remote store/i.test(message))
    return `${message} (the remote store${opts.remoteStore ? ` ${opts.remoteStore}` : ""} is not writable by this user: check remote-store)`;
  return message;
}
