// nsh.conf's ssh settings → SshPool options. Every ssh connection nsh makes is built from here (the
// build hook's, `nsh copy`'s, `nsh doctor`'s; OpenSSH's bulk sessions trust only the key such a pool
// verified and take its timeout), so none can forget the pinned host keys or the connect timeout.
// Pure: the pins are parsed and checked here, before anything connects.
import { type NshConfig, pinnedKeys } from "../config/nsh-conf.ts";
import { parsePublicKey } from "./known-hosts.ts";
import { matchPattern, type ResolvedHost } from "./ssh-config.ts";
import type { SshPoolOptions } from "./ssh.ts";

export class SshSettingsError extends Error {
  override name = "SshSettingsError";
}

const SETTING = "nsh.conf ssh-connect-timeout";

export type SshSettings = Pick<NshConfig, "ssh-config" | "trusted" | "ssh-connect-timeout">;

/**
 * `trusted` (HOSTS KEYTYPE BASE64 triples) → the keys pinned for a host. HOSTS are comma-separated
 * names or patterns (`*`, `?`), matched against the host as given and its HostName; a host that
 * matches gets the keys of every matching entry, and only those (pins are exclusive).
 */
export function trustedPins(trusted: readonly string[]): (host: Pick<ResolvedHost, "alias" | "hostname">) => string[] {
  const { pins, error } = pinnedKeys([...trusted]);
  if (error) throw new SshSettingsError(`nsh.conf: ${error}`);
  for (const [pattern, keys] of pins) {
    for (const k of keys) {
      try {
        parsePublicKey(k);
      } catch (e) {
        throw new SshSettingsError(`nsh.conf: 'trusted' for ${pattern}: ${(e as Error).message}`);
      }
    }
  }
  const entries = [...pins];
  const matches = (p: string, host: Pick<ResolvedHost, "alias" | "hostname">) => matchPattern(p, host.alias) || matchPattern(p, host.hostname);
  return (host) => entries.filter(([p]) => matches(p, host)).flatMap(([, keys]) => keys);
}

/**
 * The pool options for nsh.conf's settings. `configFile` (a command's --ssh-config) replaces
 * `ssh-config`. ssh-connect-timeout applies to hosts whose ssh config sets no ConnectTimeout: a
 * ConnectTimeout there is per host and is what `ssh` itself (the bulk sessions) uses, so it wins.
 * Throws SshSettingsError for malformed pins.
 */
export function sshPoolOptions(
  conf: SshSettings,
  over: { configFile?: string; warn?: (message: string) => void; relay?: SshPoolOptions["relay"] } = {},
): SshPoolOptions {
  const configFile = over.configFile ?? (conf["ssh-config"] || undefined);
  const seconds = conf["ssh-connect-timeout"];
  return {
    ...(configFile ? { configFile } : {}),
    trusted: trustedPins(conf.trusted),
    // 0 means nsh's own default, as ConnectTimeout 0 does in the ssh config.
    ...(seconds > 0 ? { connectTimeout: { connectTimeoutMs: seconds * 1000, connectTimeoutFrom: SETTING } } : {}),
    ...(over.warn ? { warn: over.warn } : {}),
    ...(over.relay ? { relay: over.relay } : {}),
  };
}
