// Streaming, validating NAR reader (format of libutil/archive.cc). It passes the NAR's bytes
// on unchanged while hashing them, so a caller can relay a NAR (e.g. from the serve protocol's
// DumpStorePath, which has no length prefix) and learn its narHash/narSize on the way.
// File contents go through WireReader.stream(), so memory stays bounded whatever the file size.

import { WireError, WireReader } from "./wire.ts";

export class NarError extends Error {
  override name = "NarError";
}

export type NarEntryEvent =
  | { type: "regular"; path: string; executable: boolean; size: number }
  | { type: "symlink"; path: string; target: string }
  | { type: "directory"; path: string };

export interface ReadNarOptions {
  /** Longest entry name in bytes; Linux's NAME_MAX by default. */
  maxNameLength?: number;
  /** Longest symlink target in bytes; Linux's PATH_MAX by default. */
  maxTargetLength?: number;
  /** Deepest directory nesting (the root is depth 0). */
  maxDepth?: number;
  /** Called for each file, symlink and directory, in NAR order; `path` is relative ("" for the root). */
  onEntry?: (event: NarEntryEvent) => void;
  /** Skip the SHA-256 (narHash comes back empty) when the receiver checks the hash itself. */
  noHash?: boolean;
}

export interface NarResult {
  narSize: number;
  /** SHA-256 of the NAR bytes (32 raw bytes). */
  narHash: Uint8Array;
}

export type NarSink = (chunk: Uint8Array) => Promise<void> | void;

/**
 * Where a NAR producer writes: bytes, and, when the transport can take a file's bytes without nsh
 * reading them (sendfile(2) into a pipe), `fromFile` for the contents of large regular files.
 */
export type NarOutput = ((chunk: Uint8Array) => Promise<void>) & {
  fromFile?: (fd: number, offset: number, length: number, onBytes?: (n: number) => void) => Promise<void>;
};

const NAR_MAGIC = "nix-archive-1";
/** Keywords are at most 13 bytes; a longer string where one is expected is reported by length. */
const MAX_KEYWORD = 32;
/** Batch small tokens into chunks of about this size before handing them to the sink. */
const BATCH = 64 * 1024;

const enc = new TextEncoder();
const dec = new TextDecoder();
const pad = (len: number) => (8 - (len % 8)) % 8;

function show(bytes: Uint8Array): string {
  const s = JSON.stringify(dec.decode(bytes.subarray(0, 40)));
  return bytes.length > 40 ? `${s}...` : s;
}

/** Byte-wise comparison, as Nix compares names (std::string), not UTF-16 order. */
function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

function nameProblem(name: Uint8Array): string | undefined {
  if (name.length === 0) return "is empty";
  if (name.length === 1 && name[0] === 0x2e) return "is '.'";
  if (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e) return "is '..'";
  if (name.includes(0x2f)) return "contains '/'";
  if (name.includes(0)) return "contains a NUL byte";
  return undefined;
}

interface Dir {
  path: string;
  depth: number;
  prev: Uint8Array | undefined;
}

class NarParser {
  private readonly start: number;
  private readonly hasher: Bun.CryptoHasher | undefined;
  private size = 0;
  private pending: Uint8Array[] = [];
  private pendingLen = 0;

  constructor(
    private readonly r: WireReader,
    private readonly sink: NarSink,
    private readonly opts: ReadNarOptions,
  ) {
    this.start = r.consumed;
    this.hasher = opts.noHash ? undefined : new Bun.CryptoHasher("sha256");
  }

  private offset(): number {
    return this.r.consumed - this.start;
  }

  private fail(msg: string): never {
    throw new NarError(msg);
  }

  private async emit(bytes: Uint8Array): Promise<void> {
    if (bytes.length === 0) return;
    this.hasher?.update(bytes);
    this.size += bytes.length;
    this.pending.push(bytes);
    this.pendingLen += bytes.length;
    if (this.pendingLen >= BATCH) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.pendingLen === 0) return;
    const parts = this.pending;
    let chunk: Uint8Array;
    if (parts.length === 1) chunk = parts[0]!;
    else {
      chunk = new Uint8Array(this.pendingLen);
      let off = 0;
      for (const p of parts) {
        chunk.set(p, off);
        off += p.length;
      }
    }
    this.pending = [];
    this.pendingLen = 0;
    await this.sink(chunk);
  }

  /** Reads a u64 length field; returns it with its raw bytes (which are emitted by the caller). */
  private async length(what: string, at: number): Promise<[number, Uint8Array]> {
    const raw = await this.r.bytes(8, `length of ${what} at NAR offset ${at}`);
    const v = new DataView(raw.buffer, raw.byteOffset, 8).getBigUint64(0, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`${what} at NAR offset ${at}: length ${v} is too large`);
    return [Number(v), raw];
  }

  private async padding(len: number, what: string): Promise<void> {
    const at = this.offset();
    const p = await this.r.bytes(pad(len), `padding of ${what} at NAR offset ${at}`);
    if (p.some((b) => b !== 0)) this.fail(`non-zero padding after ${what} at NAR offset ${at}`);
    await this.emit(p);
  }

  /** One string token of at most `max` bytes; `tooLong` words the error when it is longer. */
  private async string(what: string, max: number, tooLong?: (len: number, at: number) => string): Promise<Uint8Array> {
    const at = this.offset();
    const [len, raw] = await this.length(what, at);
    if (len > max) this.fail(tooLong ? tooLong(len, at) : `${what} at NAR offset ${at} is ${len} bytes long; the limit is ${max}`);
    await this.emit(raw);
    const body = await this.r.bytes(len, `${what} at NAR offset ${at}`);
    await this.emit(body);
    await this.padding(len, what);
    return body;
  }

  /** Reads a keyword and checks it is one of `choices`. */
  private async keyword<K extends string>(choices: readonly K[], context = ""): Promise<K> {
    const want = choices.map((c) => `'${c}'`).join(" or ");
    const where = (at: number) => `expected ${want}${context} at NAR offset ${at}`;
    const at = this.offset();
    const body = await this.string(`${want}${context}`, MAX_KEYWORD, (len, at) => `${where(at)}, got a string of ${len} bytes`);
    const s = dec.decode(body);
    const hit = choices.find((c) => c === s && enc.encode(c).length === body.length);
    if (hit === undefined) this.fail(`${where(at)}, got ${show(body)}`);
    return hit;
  }

  private async expect(word: string, context = ""): Promise<void> {
    await this.keyword([word], context);
  }

  private async contents(path: string): Promise<number> {
    const what = `contents of '${path}'`;
    const at = this.offset();
    const [len, raw] = await this.length(what, at);
    await this.emit(raw);
    await this.flush();
    for await (const chunk of this.r.stream(len, `${what} at NAR offset ${at}`)) {
      this.hasher?.update(chunk);
      this.size += chunk.length;
      await this.sink(chunk);
    }
    await this.padding(len, what);
    return len;
  }

  /** Parses the node after its "(" "type": returns a Dir to descend into, or undefined when done. */
  private async node(path: string, depth: number): Promise<Dir | undefined> {
    const label = path === "" ? " for the root" : ` for '${path}'`;
    await this.expect("(", ` to open the node${label}`);
    await this.expect("type", label);
    const kind = await this.keyword(["regular", "symlink", "directory"] as const, label);
    const onEntry = this.opts.onEntry;
    if (kind === "directory") {
      onEntry?.({ type: "directory", path });
      return { path, depth, prev: undefined };
    }
    if (kind === "symlink") {
      await this.expect("target", label);
      const target = await this.string(`symlink target of '${path}'`, this.opts.maxTargetLength ?? 4096);
      if (target.length === 0) this.fail(`symlink '${path}' has an empty target (before NAR offset ${this.offset()})`);
      if (target.includes(0)) this.fail(`symlink target of '${path}' contains a NUL byte (before NAR offset ${this.offset()})`);
      onEntry?.({ type: "symlink", path, target: dec.decode(target) });
    } else {
      let executable = false;
      if ((await this.keyword(["executable", "contents"] as const, label)) === "executable") {
        executable = true;
        await this.expect("", ` after 'executable'${label}`);
        await this.expect("contents", label);
      }
      const size = await this.contents(path);
      onEntry?.({ type: "regular", path, executable, size });
    }
    await this.expect(")", ` to close the node${label}`);
    return undefined;
  }

  async run(): Promise<NarResult> {
    await this.expect(NAR_MAGIC, " (not a NAR?)");
    const maxDepth = this.opts.maxDepth ?? 2048;
    const maxName = this.opts.maxNameLength ?? 255;
    // Explicit stack instead of recursion: nesting depth comes from untrusted input.
    const stack: Dir[] = [];
    let next: { path: string; depth: number } | undefined = { path: "", depth: 0 };
    for (;;) {
      if (next !== undefined) {
        const dir = await this.node(next.path, next.depth);
        next = undefined;
        if (dir !== undefined) stack.push(dir);
        else if (stack.length === 0) break;
        else await this.expect(")", " to close the directory entry");
        continue;
      }
      const dir = stack[stack.length - 1]!;
      const label = dir.path === "" ? "the root directory" : `directory '${dir.path}'`;
      if ((await this.keyword(["entry", ")"] as const, ` in ${label}`)) === ")") {
        stack.pop();
        if (stack.length === 0) break;
        await this.expect(")", " to close the directory entry");
        continue;
      }
      await this.expect("(", ` to open an entry in ${label}`);
      await this.expect("name", ` in an entry of ${label}`);
      const at = this.offset();
      const name = await this.string(`entry name in ${label}`, maxName);
      const problem = nameProblem(name);
      if (problem !== undefined) this.fail(`entry name ${show(name)} at NAR offset ${at} in ${label} ${problem}`);
      if (dir.prev !== undefined) {
        const cmp = compareBytes(name, dir.prev);
        if (cmp === 0) this.fail(`duplicate entry name ${show(name)} at NAR offset ${at} in ${label}`);
        if (cmp < 0) this.fail(`entry name ${show(name)} at NAR offset ${at} in ${label} comes after ${show(dir.prev)}: names must be sorted`);
      }
      dir.prev = name;
      const path = dir.path === "" ? dec.decode(name) : `${dir.path}/${dec.decode(name)}`;
      if (dir.depth + 1 > maxDepth) this.fail(`'${path}' at NAR offset ${at} is nested deeper than ${maxDepth} levels`);
      await this.expect("node", ` for '${path}'`);
      next = { path, depth: dir.depth + 1 };
    }
    await this.flush();
    return { narSize: this.size, narHash: this.hasher ? new Uint8Array(this.hasher.digest()) : new Uint8Array(0) };
  }
}

/**
 * Reads exactly one NAR from `r`, handing every byte to `sink` once and in order, and leaves
 * whatever follows unread. Throws NarError (also for a truncated stream) naming the NAR offset.
 */
export async function readNar(r: WireReader, sink: NarSink, opts: ReadNarOptions = {}): Promise<NarResult> {
  try {
    return await new NarParser(r, sink, opts).run();
  } catch (e) {
    if (e instanceof WireError) throw new NarError(`truncated or invalid NAR: ${e.message}`);
    throw e;
  }
}

/** Test/utility helper: validates a NAR held in memory; the buffer must hold exactly one NAR. */
export async function readNarBytes(
  bytes: Uint8Array,
  opts: Omit<ReadNarOptions, "onEntry"> = {},
): Promise<NarResult & { entries: NarEntryEvent[] }> {
  const r = WireReader.fromBytes(bytes);
  const entries: NarEntryEvent[] = [];
  const res = await readNar(r, () => {}, { ...opts, onEntry: (e) => entries.push(e) });
  if (!(await r.atEnd())) throw new NarError(`trailing data after the NAR at offset ${res.narSize}`);
  return { ...res, entries };
}
