// Nix's wire format: u64 little-endian integers and length-prefixed strings padded to 8 bytes.
// Used by the hook protocol, the worker protocol handshake and (later) the serve protocol.

export class WireError extends Error {}

/** Default cap on one string: hook and serve strings are paths, names and settings, never megabytes. */
export const DEFAULT_MAX_STRING = 1 << 20;
/** Cap on list lengths, so a corrupt count cannot make us allocate forever. */
export const DEFAULT_MAX_LIST = 1 << 20;

export function encodeU64(n: number | bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  return out;
}

const pad = (len: number) => (8 - (len % 8)) % 8;

export function encodeString(s: string | Uint8Array): Uint8Array {
  const bytes = typeof s === "string" ? new TextEncoder().encode(s) : s;
  const out = new Uint8Array(8 + bytes.length + pad(bytes.length));
  new DataView(out.buffer).setBigUint64(0, BigInt(bytes.length), true);
  out.set(bytes, 8);
  return out;
}

export function encodeStrings(list: readonly string[]): Uint8Array {
  return concat([encodeU64(list.length), ...list.map((s) => encodeString(s))]);
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let len = 0;
  for (const p of parts) len += p.length;
  const out = new Uint8Array(len);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Where bytes come from: a stream reader, or a fixed buffer in tests. */
export type ByteSource = AsyncIterator<Uint8Array> | { read(): Promise<{ done: boolean; value?: Uint8Array }> };

/**
 * Pull-based reader over a byte stream. Each read names what it reads, so a short or corrupt
 * stream yields an error like "EOF while reading drvPath (got 3 of 8 bytes)". Chunks are kept as
 * received (no re-concatenation), and `stream()` hands large payloads on chunk by chunk, so
 * memory stays bounded by the source's chunk size whatever the payload's size.
 */
export class WireReader {
  private chunks: Uint8Array[] = [];
  private available = 0;
  private eof = false;
  /** Total bytes consumed, for error messages with offsets. */
  consumed = 0;

  constructor(private readonly source: ByteSource) {}

  static fromBytes(bytes: Uint8Array): WireReader {
    let given = false;
    return new WireReader({
      next: async () => {
        if (given) return { done: true, value: undefined };
        given = true;
        return { done: false, value: bytes };
      },
    } as AsyncIterator<Uint8Array>);
  }

  /** Pulls one more chunk from the source; false at end of stream. */
  private async pull(): Promise<boolean> {
    if (this.eof) return false;
    const r = "read" in this.source ? await this.source.read() : await this.source.next();
    if (r.done || r.value === undefined) {
      this.eof = true;
      return false;
    }
    if (r.value.length > 0) {
      this.chunks.push(r.value);
      this.available += r.value.length;
    }
    return true;
  }

  private async fill(need: number, what: string): Promise<void> {
    while (this.available < need) {
      if (!(await this.pull())) throw new WireError(`unexpected end of stream while reading ${what} (got ${this.available} of ${need} bytes)`);
    }
  }

  /** Removes up to `max` bytes from the front of the buffer (at least one chunk's worth if any). */
  private take(max: number): Uint8Array {
    const head = this.chunks[0]!;
    if (head.length <= max) {
      this.chunks.shift();
      this.available -= head.length;
      this.consumed += head.length;
      return head;
    }
    this.chunks[0] = head.subarray(max);
    this.available -= max;
    this.consumed += max;
    return head.subarray(0, max);
  }

  async bytes(n: number, what: string): Promise<Uint8Array> {
    if (n === 0) return new Uint8Array(0);
    await this.fill(n, what);
    if (this.chunks[0]!.length >= n) return this.take(n).slice();
    const out = new Uint8Array(n);
    for (let off = 0; off < n; ) {
      const part = this.take(n - off);
      out.set(part, off);
      off += part.length;
    }
    return out;
  }

  /** Yields exactly `n` bytes as they arrive, never holding more than one source chunk. */
  async *stream(n: number, what: string): AsyncGenerator<Uint8Array> {
    let left = n;
    while (left > 0) {
      if (this.available === 0 && !(await this.pull())) throw new WireError(`unexpected end of stream while reading ${what} (got ${n - left} of ${n} bytes)`);
      if (this.available === 0) continue;
      const part = this.take(left);
      left -= part.length;
      yield part;
    }
  }

  /** The bytes received and not yet read, left in place: a parser may look ahead and then skip(). */
  buffered(): Uint8Array {
    return this.chunks.length === 1 ? this.chunks[0]! : concat(this.chunks);
  }

  /** Reads the next chunk from the source into the buffer; false at the end of the stream. */
  more(): Promise<boolean> {
    return this.pull();
  }

  /** Drops `n` buffered bytes (at most what is buffered), as if read. */
  skip(n: number): void {
    for (let left = Math.min(n, this.available); left > 0; ) left -= this.take(left).length;
  }

  /** True when the stream has ended with nothing left unread. */
  async atEnd(): Promise<boolean> {
    while (this.available === 0) if (!(await this.pull())) return true;
    return false;
  }

  async u64(what: string): Promise<number> {
    const b = await this.bytes(8, what);
    const v = new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new WireError(`${what}: value ${v} is too large`);
    return Number(v);
  }

  async bool(what: string): Promise<boolean> {
    return (await this.u64(what)) !== 0;
  }

  async stringBytes(what: string, max = DEFAULT_MAX_STRING): Promise<Uint8Array> {
    const start = this.consumed;
    const len = await this.u64(`length of ${what}`);
    if (len > max) throw new WireError(`${what}: length ${len} at offset ${start} exceeds the limit of ${max} bytes`);
    const body = await this.bytes(len, what);
    const padding = await this.bytes(pad(len), `padding of ${what}`);
    for (const b of padding) if (b !== 0) throw new WireError(`${what}: non-zero padding at offset ${start + 8 + len}`);
    return body;
  }

  async string(what: string, max = DEFAULT_MAX_STRING): Promise<string> {
    return new TextDecoder().decode(await this.stringBytes(what, max));
  }

  async strings(what: string, max = DEFAULT_MAX_LIST): Promise<string[]> {
    const n = await this.u64(`count of ${what}`);
    if (n > max) throw new WireError(`${what}: count ${n} exceeds the limit of ${max}`);
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(await this.string(`${what}[${i}]`));
    return out;
  }
}
