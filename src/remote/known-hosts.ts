// known_hosts (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT") and the host key decision. nsh never accepts a
// host key blindly: a key must be in known_hosts or pinned in nsh.conf `trusted`, unless the user
// configured `StrictHostKeyChecking no`/`accept-new` (the caller decides that, with a warning). Pure.
import { createHash, createHmac, timingSafeEqual } from "node:crypto";

export interface KnownHostEntry {
  file: string;
  line: number;
  marker?: "revoked" | "cert-authority";
  /** Comma-separated patterns, or undefined for a hashed entry. */
  patterns?: string[];
  hashed?: { salt: Buffer; hash: Buffer };
  keyType: string;
  keyBlob: Buffer;
}

export interface ParsedKnownHosts {
  entries: KnownHostEntry[];
  /** "file:line: why" for lines that were skipped. */
  invalid: string[];
}

export type HostKeyCheck =
  | { ok: true; via: string }
  | { ok: false; reason: "unknown-host" | "mismatch" | "revoked"; message: string };

/** Reads the first SSH string of a key blob: its type, e.g. "ssh-ed25519". */
export function keyTypeOfBlob(blob: Uint8Array): string | undefined {
  if (blob.length < 4) return undefined;
  const n = Buffer.from(blob.buffer, blob.byteOffset, blob.length).readUInt32BE(0);
  if (n === 0 || n > 64 || 4 + n > blob.length) return undefined;
  return Buffer.from(blob.subarray(4, 4 + n)).toString("latin1");
}

/** OpenSSH's fingerprint: "SHA256:" and base64 of the blob's SHA-256 without padding. */
export function fingerprintSha256(blob: Uint8Array): string {
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

/** "ED25519", "RSA", "ECDSA": how OpenSSH names key types in messages. */
export function keyTypeLabel(keyType: string): string {
  if (keyType.includes("ed25519")) return "ED25519";
  if (keyType.startsWith("ecdsa")) return "ECDSA";
  if (keyType.includes("rsa")) return "RSA";
  if (keyType.includes("dss")) return "DSA";
  return keyType;
}

const describeKey = (keyType: string, blob: Uint8Array) => `${keyTypeLabel(keyType)} key ${fingerprintSha256(blob)}`;

function decodeKey(keyType: string, base64: string): Buffer | string {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) return "key is not base64";
  const blob = Buffer.from(base64, "base64");
  const inner = keyTypeOfBlob(blob);
  if (inner !== keyType) return `key type ${keyType} does not match the key's own type ${inner ?? "(unreadable)"}`;
  return blob;
}

/** "ssh-ed25519 AAAA... [comment]", as in a .pub file or nsh.conf `trusted`. */
export function parsePublicKey(text: string): { keyType: string; keyBlob: Buffer; comment: string } {
  const [keyType, base64, ...comment] = text.trim().split(/\s+/);
  if (!keyType || !base64) {
    throw new Error(`not a public key: ${JSON.stringify(text)} (expected "ssh-ed25519 AAAA...")`);
  }
  const blob = decodeKey(keyType, base64);
  if (typeof blob === "string") throw new Error(`not a public key: ${JSON.stringify(text)}: ${blob}`);
  return { keyType, keyBlob: blob, comment: comment.join(" ") };
}

export function parseKnownHosts(text: string, file: string): ParsedKnownHosts {
  const out: ParsedKnownHosts = { entries: [], invalid: [] };
  text.split(/\r?\n/).forEach((raw, idx) => {
    const line = idx + 1;
    const trimmed = raw.trim();
    if (trimmed === "" || trimmed.startsWith("#")) return;
    const words = trimmed.split(/\s+/);
    let marker: KnownHostEntry["marker"];
    if (words[0]!.startsWith("@")) {
      const m = words.shift()!;
      if (m === "@revoked") marker = "revoked";
      else if (m === "@cert-authority") marker = "cert-authority";
      else return void out.invalid.push(`${file}:${line}: unknown marker ${m}`);
    }
    const [hosts, keyType, base64] = words;
    if (!hosts || !keyType || !base64) return void out.invalid.push(`${file}:${line}: expected "hosts keytype key"`);
    const keyBlob = decodeKey(keyType, base64);
    if (typeof keyBlob === "string") return void out.invalid.push(`${file}:${line}: ${keyBlob}`);
    const entry: KnownHostEntry = { file, line, marker, keyType, keyBlob };
    if (hosts.startsWith("|1|")) {
      const [salt, hash] = hosts.slice(3).split("|");
      const s = Buffer.from(salt ?? "", "base64");
      const h = Buffer.from(hash ?? "", "base64");
      if (s.length !== 20 || h.length !== 20) {
        return void out.invalid.push(`${file}:${line}: malformed hashed host name`);
      }
      entry.hashed = { salt: s, hash: h };
    } else {
      entry.patterns = hosts.split(",").filter((p) => p !== "");
    }
    out.entries.push(entry);
  });
  return out;
}

/** The name known_hosts stores: "host" on port 22, "[host]:port" otherwise. */
export function knownHostsName(host: string, port: number): string {
  const h = host.toLowerCase();
  return port === 22 ? h : `[${h}]:${port}`;
}

/** Glob with `*` and `?`, case-insensitive (host names). */
function globMatch(pattern: string, text: string): boolean {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${re}$`, "is").test(text);
}

export function entryMatchesHost(entry: KnownHostEntry, name: string): boolean {
  if (entry.hashed) {
    const h = createHmac("sha1", entry.hashed.salt).update(name).digest();
    return timingSafeEqual(h, entry.hashed.hash);
  }
  let positive = false;
  for (const p of entry.patterns ?? []) {
    if (p.startsWith("!")) {
      if (globMatch(p.slice(1), name)) return false;
    } else if (globMatch(p, name)) positive = true;
  }
  return positive;
}

const sameKey = (a: Uint8Array, b: Uint8Array) =>
  a.length === b.length && Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;

/**
 * Decides whether `keyBlob` is the right host key for host:port. `pinned` keys (nsh.conf `trusted`)
 * pin the host exclusively: when given, only they are accepted, and known_hosts only counts for
 * @revoked. @cert-authority lines are ignored (nsh does not verify host certificates).
 */
export function checkHostKey(
  entries: readonly KnownHostEntry[],
  host: string,
  port: number,
  keyType: string,
  keyBlob: Uint8Array,
  pinned: readonly string[] = [],
): HostKeyCheck {
  const name = knownHostsName(host, port);
  const presented = describeKey(keyType, keyBlob);
  const forHost = entries.filter((e) => e.marker !== "cert-authority" && entryMatchesHost(e, name));
  const revoked = forHost.find((e) => e.marker === "revoked" && sameKey(e.keyBlob, keyBlob));
  if (revoked) {
    const where = `${revoked.file}:${revoked.line}`;
    return {
      ok: false,
      reason: "revoked",
      message: `the host key of ${name} (${presented}) is marked @revoked in ${where}; refusing to connect`,
    };
  }
  const pins = pinned.flatMap((p) => {
    try {
      return [parsePublicKey(p)];
    } catch {
      return []; // the caller validates nsh.conf; a bad pin must never match
    }
  });
  if (pins.length > 0) {
    if (pins.some((p) => p.keyType === keyType && sameKey(p.keyBlob, keyBlob))) {
      return { ok: true, via: "nsh.conf trusted" };
    }
    const expected = pins.map((p) => describeKey(p.keyType, p.keyBlob)).join(", ");
    return {
      ok: false,
      reason: "mismatch",
      message: `HOST KEY MISMATCH for ${name}: it presented ${presented}, but nsh.conf \`trusted\` pins ${expected}. ` +
        "Someone may be intercepting the connection, or the host key was changed; " +
        "if the change is expected, update the pinned key in nsh.conf `trusted`.",
    };
  }
  const plain = forHost.filter((e) => e.marker === undefined);
  const match = plain.find((e) => e.keyType === keyType && sameKey(e.keyBlob, keyBlob));
  if (match) return { ok: true, via: `${match.file}:${match.line}` };
  const changed = plain.find((e) => e.keyType === keyType);
  if (changed) {
    return {
      ok: false,
      reason: "mismatch",
      message: `HOST KEY MISMATCH for ${name}: it presented ${presented}, ` +
        `but ${changed.file}:${changed.line} expects ` +
        `${describeKey(changed.keyType, changed.keyBlob)}. ` +
        "Someone may be intercepting the connection, or the host key was changed; " +
        "if the change is expected, " +
        `remove the old key (ssh-keygen -R '${name}' -f ${changed.file}) and add the new one.`,
    };
  }
  const otherKeys = plain.map((e) => `${keyTypeLabel(e.keyType)} at ${e.file}:${e.line}`).join(", ");
  const others = plain.length > 0 ? ` (known_hosts has only other key types for it: ${otherKeys})` : "";
  return {
    ok: false,
    reason: "unknown-host",
    message: `the host key of ${name} is not known${others}: it presented ${presented}. ` +
      "After checking that fingerprint out of band " +
      `(e.g. ssh-keygen -lf /etc/ssh/ssh_host_${keyTypeLabel(keyType).toLowerCase()}_key.pub on the host), ` +
      "add the line " +
      `"${knownHostsLine(host, port, keyType, keyBlob)}" to ~/.ssh/known_hosts, ` +
      `or pin "${keyType} ${Buffer.from(keyBlob).toString("base64")}" in nsh.conf \`trusted\``,
  };
}

/** A known_hosts line for host:port, as accept-new appends it. */
export function knownHostsLine(host: string, port: number, keyType: string, keyBlob: Uint8Array): string {
  return `${knownHostsName(host, port)} ${keyType} ${Buffer.from(keyBlob).toString("base64")}`;
}

// Host key algorithms ssh2 can negotiate for each stored key type.
const ALGORITHMS: Record<string, string[]> = {
  "ssh-ed25519": ["ssh-ed25519"],
  "ecdsa-sha2-nistp256": ["ecdsa-sha2-nistp256"],
  "ecdsa-sha2-nistp384": ["ecdsa-sha2-nistp384"],
  "ecdsa-sha2-nistp521": ["ecdsa-sha2-nistp521"],
  "ssh-rsa": ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
};

/**
 * Host key algorithms to prefer for host:port, like OpenSSH: the types already known (or pinned)
 * come first, so a host with both RSA and ED25519 keys is not refused for offering the unknown one.
 */
export function preferredHostKeyAlgorithms(
  entries: readonly KnownHostEntry[],
  host: string,
  port: number,
  pinned: readonly string[] = [],
): string[] {
  const name = knownHostsName(host, port);
  const types = pinned.length > 0
    ? pinned.map((p) => p.trim().split(/\s+/)[0] ?? "")
    : entries.filter((e) => e.marker === undefined && entryMatchesHost(e, name)).map((e) => e.keyType);
  return [...new Set(types.flatMap((t) => ALGORITHMS[t] ?? []))];
}
