// Bulk NAR transfers (either way) through OpenSSH's `ssh`, next to the ssh2 connection that found
// the host, authenticated and verified it. ssh2 encrypts in JavaScript, one fresh buffer per 32 KiB
// packet, and for a 1 GiB path that costs more CPU than Nix's whole copy; `ssh` encrypts in C, and
// when sending nsh feeds it with sendfile(2), so the NAR's contents never pass through nsh. The child trusts exactly
// the host key ssh2 verified (a one-line known_hosts under HostKeyAlias, StrictHostKeyChecking=yes),
// never prompts (BatchMode), and reads the same ssh config, so User, Port, HostName and IdentityFile
// agree with ssh2's. Only options OpenSSH 7.4 (RHEL 7) already knows, since an unknown one is fatal.
// Anything that goes wrong means the copy stays on ssh2.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ServeClient } from "../nix/serve-client.ts";
import type { Destination } from "./destination.ts";
import { spawnPipeDuplex } from "./local-process.ts";
import type { ResolvedHost } from "./ssh-config.ts";
import type { SshPool } from "./ssh.ts";

/** The name the child looks the host key up under, so nothing else in known_hosts can match. */
export const HOST_KEY_ALIAS = "nsh-verified-host";

/** Ciphers AES-NI makes cheapest first (OpenSSH's default order puts chacha20 first). */
const CIPHERS = "aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,aes128-ctr,aes256-ctr";

export interface OpenSshTarget {
  /** The host as the user named it (the ssh config's Host patterns match it). */
  alias: string;
  host: Pick<ResolvedHost, "user" | "port" | "connectTimeoutMs" | "keepaliveIntervalMs" | "keepaliveCountMax">;
  configFile?: string;
  knownHostsFile: string;
}

/** The `ssh` command line (pure; table-tested). */
export function openSshArgv(t: OpenSshTarget, command: string, ssh = "ssh"): string[] {
  const o = (k: string, v: string | number) => ["-o", `${k}=${v}`];
  return [
    ssh,
    ...(t.configFile ? ["-F", t.configFile] : []),
    ...o("BatchMode", "yes"),
    ...o("StrictHostKeyChecking", "yes"),
    ...o("UserKnownHostsFile", t.knownHostsFile),
    ...o("GlobalKnownHostsFile", "/dev/null"),
    ...o("HostKeyAlias", HOST_KEY_ALIAS),
    ...o("CheckHostIP", "no"),
    ...o("UpdateHostKeys", "no"),
    ...o("Ciphers", CIPHERS),
    ...o("ConnectTimeout", Math.max(1, Math.ceil(t.host.connectTimeoutMs / 1000))),
    ...o("ServerAliveInterval", Math.max(1, Math.ceil(t.host.keepaliveIntervalMs / 1000))),
    ...o("ServerAliveCountMax", t.host.keepaliveCountMax),
    ...o("ControlMaster", "no"),
    ...o("ControlPath", "none"),
    ...o("ClearAllForwardings", "yes"),
    ...o("RequestTTY", "no"),
    "-l", t.host.user,
    "-p", String(t.host.port),
    "--", t.alias,
    command,
  ];
}

/** The one line of the child's known_hosts (pure). */
export function pinnedKnownHosts(keyType: string, key: Uint8Array): string {
  return `${HOST_KEY_ALIAS} ${keyType} ${Buffer.from(key).toString("base64")}\n`;
}

export interface BulkSession {
  client: ServeClient;
  close(): Promise<void>;
}

/**
 * A second serve session to `dest` through OpenSSH (named `label` in progress lines), or undefined (with the reason given to `log`)
 * when `ssh` is missing or cannot get in on its own (a key only ssh2 could use, a changed host key).
 */
export async function openBulkServe(
  pool: SshPool, dest: Destination, command: string, storeDir: string, log: (m: string) => void, label?: string,
): Promise<BulkSession | undefined> {
  const ssh = Bun.which("ssh");
  if (!ssh) return void log("bulk transfers stay on ssh2: OpenSSH's ssh is not installed");
  let dir: string | undefined;
  try {
    const v = await pool.verifiedHost(dest);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-ssh-"));
    const knownHostsFile = path.join(dir, "known_hosts");
    fs.writeFileSync(knownHostsFile, pinnedKnownHosts(v.keyType, v.key), { mode: 0o600 });
    const argv = openSshArgv({ alias: dest.host, host: v.host, configFile: v.configFile, knownHostsFile }, command, ssh);
    const duplex = spawnPipeDuplex(argv, { describe: `${dest.text} (OpenSSH): ${command}` });
    const client = await ServeClient.open(duplex, storeDir, label).catch((e) => {
      duplex.close();
      throw e;
    });
    const tmp = dir;
    return {
      client,
      async close() {
        await client.close();
        fs.rmSync(tmp, { recursive: true, force: true });
      },
    };
  } catch (e) {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    log(`bulk transfers stay on ssh2: OpenSSH's ssh could not open the store on ${dest.text}: ${(e as Error).message.split("\n")[0]}`);
    return undefined;
  }
}
