// SHA-256 hash encodings as Nix prints and parses them (libutil/hash.cc): nix32, base16,
// base64 and SRI. Only SHA-256 is handled: NAR hashes are always SHA-256 on the wire.

import { NIX_BASE32_CHARS } from "./store-path.ts";

export class HashError extends Error {
  override name = "HashError";
}

export const SHA256_SIZE = 32;
/** Lengths of a 32-byte hash in each encoding. */
export const SHA256_BASE16_LENGTH = 64;
export const SHA256_NIX32_LENGTH = 52;
export const SHA256_BASE64_LENGTH = 44;

const NIX32_INDEX = new Map([...NIX_BASE32_CHARS].map((c, i) => [c, i]));

/** Characters needed for `size` bytes in nix32. */
export function nix32Length(size: number): number {
  return Math.floor((size * 8 - 1) / 5) + 1;
}

/**
 * Nix's base-32: the last character holds the lowest 5 bits of byte 0, i.e. the string is
 * the little-endian bit string read from its most significant end. Not RFC 4648.
 */
export function nix32Encode(bytes: Uint8Array): string {
  let out = "";
  for (let n = nix32Length(bytes.length) - 1; n >= 0; n--) {
    const b = n * 5;
    const i = b >> 3;
    const j = b & 7;
    const lo = bytes[i]! >> j;
    const hi = i + 1 < bytes.length ? bytes[i + 1]! << (8 - j) : 0;
    out += NIX_BASE32_CHARS[(lo | hi) & 0x1f];
  }
  return out;
}

/** Decodes nix32 into `size` bytes (default: the size the length implies for SHA-256 etc.). */
export function nix32Decode(s: string, size = sizeForNix32Length(s.length)): Uint8Array {
  if (s.length !== nix32Length(size)) {
    throw new HashError(`nix32 string has length ${s.length}, expected ${nix32Length(size)} for ${size} bytes`);
  }
  const out = new Uint8Array(size);
  for (let n = 0; n < s.length; n++) {
    const c = s[s.length - 1 - n]!;
    const digit = NIX32_INDEX.get(c);
    if (digit === undefined) throw new HashError(`invalid nix32 character '${c}' at position ${s.length - 1 - n}`);
    const b = n * 5;
    const i = b >> 3;
    const j = b & 7;
    out[i]! |= (digit << j) & 0xff;
    const carry = digit >> (8 - j);
    // Bits beyond the last byte must be zero, or the string encodes a bigger number.
    if (i + 1 < size) out[i + 1]! |= carry;
    else if (carry !== 0) throw new HashError(`nix32 string '${s}' does not fit in ${size} bytes`);
  }
  return out;
}

function sizeForNix32Length(len: number): number {
  // Inverse of nix32Length for the sizes Nix uses (16, 20, 32, 64 bytes).
  for (const size of [16, 20, 32, 64]) if (nix32Length(size) === len) return size;
  throw new HashError(`nix32 string has length ${len}, which matches no hash size`);
}

export function toBase16(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

export function fromBase16(s: string): Uint8Array {
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) throw new HashError(`invalid base16 string '${s}'`);
  return new Uint8Array(Buffer.from(s, "hex"));
}

export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

function fromBase64(s: string): Uint8Array {
  // Buffer ignores junk silently, so check the alphabet and padding first.
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) throw new HashError(`invalid base64 string '${s}'`);
  return new Uint8Array(Buffer.from(s, "base64"));
}

/** Decodes a SHA-256 digest given without algorithm, choosing the encoding by length like Nix. */
function decodeSha256Digest(digest: string, original: string): Uint8Array {
  switch (digest.length) {
    case SHA256_BASE16_LENGTH:
      return fromBase16(digest);
    case SHA256_NIX32_LENGTH:
      return nix32Decode(digest, SHA256_SIZE);
    case SHA256_BASE64_LENGTH: {
      const b = fromBase64(digest);
      if (b.length !== SHA256_SIZE) throw new HashError(`hash '${original}': base64 digest decodes to ${b.length} bytes, not 32`);
      return b;
    }
    default:
      throw new HashError(
        `hash '${original}' has a digest of length ${digest.length}; SHA-256 needs ${SHA256_BASE16_LENGTH} (base16), ` +
          `${SHA256_NIX32_LENGTH} (nix32) or ${SHA256_BASE64_LENGTH} (base64)`,
      );
  }
}

/**
 * Parses a NAR hash as found in path infos and on the serve protocol: `sha256:<nix32|base16|base64>`,
 * SRI `sha256-<base64>`, or a bare base16/nix32 digest. Returns the 32 raw bytes.
 */
export function parseNarHash(s: string): Uint8Array {
  const wrap = (f: () => Uint8Array): Uint8Array => {
    try {
      return f();
    } catch (e) {
      if (e instanceof HashError && !e.message.includes(`'${s}'`)) throw new HashError(`hash '${s}': ${e.message}`);
      throw e;
    }
  };
  const colon = s.indexOf(":");
  const dash = s.indexOf("-");
  if (colon !== -1 && (dash === -1 || colon < dash)) {
    const algo = s.slice(0, colon);
    if (algo !== "sha256") throw new HashError(`hash '${s}' uses algorithm '${algo}'; a NAR hash must be sha256`);
    return wrap(() => decodeSha256Digest(s.slice(colon + 1), s));
  }
  if (dash !== -1) {
    const algo = s.slice(0, dash);
    if (algo !== "sha256") throw new HashError(`SRI hash '${s}' uses algorithm '${algo}'; a NAR hash must be sha256`);
    const digest = s.slice(dash + 1);
    if (digest.length !== SHA256_BASE64_LENGTH) {
      throw new HashError(`SRI hash '${s}' has a digest of length ${digest.length}, expected ${SHA256_BASE64_LENGTH} base64 characters`);
    }
    return wrap(() => decodeSha256Digest(digest, s));
  }
  // Bare base64 is ambiguous with nothing else at length 44, but Nix requires a type then: refuse it.
  if (s.length !== SHA256_BASE16_LENGTH && s.length !== SHA256_NIX32_LENGTH) {
    throw new HashError(`hash '${s}' has no algorithm prefix and is neither base16 (64) nor nix32 (52) characters long`);
  }
  return wrap(() => decodeSha256Digest(s, s));
}

/** `sha256:<nix32>`, the form Nix uses in path infos and the serve protocol. */
export function formatNarHash(bytes: Uint8Array): string {
  if (bytes.length !== SHA256_SIZE) throw new HashError(`a NAR hash has 32 bytes, got ${bytes.length}`);
  return `sha256:${nix32Encode(bytes)}`;
}

/** SRI form `sha256-<base64>`, as newer Nix prints hashes. */
export function formatSri(bytes: Uint8Array): string {
  if (bytes.length !== SHA256_SIZE) throw new HashError(`a SHA-256 hash has 32 bytes, got ${bytes.length}`);
  return `sha256-${toBase64(bytes)}`;
}

export function sha256(data: Uint8Array | string): Uint8Array {
  return new Uint8Array(new Bun.CryptoHasher("sha256").update(data).digest());
}
