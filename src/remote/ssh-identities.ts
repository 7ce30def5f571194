// The keys an ssh connection offers: the ssh-agent's (recorded, and restricted by IdentitiesOnly) and the identity
// files', read with ssh2 (passed in: ssh.ts loads it with the first connection).
import * as fs from "node:fs";
import type { OpenSSHAgent, ParsedKey } from "ssh2";
import { fingerprintSha256, keyTypeLabel, parsePublicKey } from "./known-hosts.ts";

export type Ssh2 = typeof import("ssh2");

type ErrnoError = Error & { code?: string };

/** The agent, wrapped to record (and with IdentitiesOnly, restrict) the keys it offers. */
export function recordingAgent(lib: Ssh2, socket: string, only: Buffer[] | undefined, tried: string[]): OpenSSHAgent {
  return new (class extends lib.OpenSSHAgent {
    override getIdentities(cb: (err: Error | undefined, keys?: ParsedKey[]) => void): void {
      super.getIdentities((err, found) => {
        const keys = (found ?? []) as ParsedKey[]; // OpenSSHAgent hands out parsed keys
        const allowed = keys.filter((k) => !only || only.some((o) => o.equals(k.getPublicSSH())));
        for (const k of allowed) {
          const comment = k.comment ? ` (${k.comment})` : "";
          tried.push(`agent key ${keyTypeLabel(k.type)} ${fingerprintSha256(k.getPublicSSH())}${comment}`);
        }
        cb(err ?? undefined, allowed);
      });
    }
  })(socket);
}

export function publicKeysOf(files: readonly string[]): Buffer[] {
  return files.flatMap((f) => {
    try {
      return [parsePublicKey(fs.readFileSync(`${f}.pub`, "utf8")).keyBlob];
    } catch {
      return [];
    }
  });
}

export function loadIdentities(
  lib: Ssh2, files: readonly string[], notes: string[],
): { key: ParsedKey; label: string }[] {
  const out: { key: ParsedKey; label: string }[] = [];
  const missing: string[] = [];
  for (const file of files) {
    let data: Buffer;
    try {
      data = fs.readFileSync(file);
    } catch (e) {
      if ((e as ErrnoError).code === "ENOENT") missing.push(file);
      else notes.push(`${file} is unreadable (${(e as ErrnoError).code ?? (e as Error).message})`);
      continue;
    }
    const parsed = lib.utils.parseKey(data);
    const key = Array.isArray(parsed) ? (parsed[0] as ParsedKey | undefined) : parsed;
    if (!key || key instanceof Error) {
      const msg = key instanceof Error ? key.message : "no key";
      notes.push(/encrypted|passphrase/i.test(msg)
        ? `${file} is encrypted (nsh cannot ask for a passphrase: load it into ssh-agent)`
        : `${file} is not a usable private key (${msg})`);
    } else if (!key.isPrivateKey()) notes.push(`${file} holds no private key`);
    else out.push({ key, label: `${file} (${keyTypeLabel(key.type)} ${fingerprintSha256(key.getPublicSSH())})` });
  }
  if (missing.length > 0) notes.push(`not found: ${missing.join(", ")}`);
  return out;
}
