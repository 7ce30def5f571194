// A path's NAR written straight from the file system (the format of libutil/archive.cc's dumpPath),
// so copying from a store we can read costs no local `nix-store --serve` process and no pipe: for
// a 1 GiB path that was a third of nsh copy's CPU. Entries in byte order of their names,
// `executable` from the owner's x bit, symlinks by target, contents streamed in chunks.
import fs from "node:fs";
import { encodeString, encodeU64 } from "./wire.ts";
import type { NarOutput, NarSink } from "./nar.ts";

export class NarDumpError extends Error {
  override name = "NarDumpError";
}

/** Contents are read in chunks of this size (each a fresh buffer: the sink may keep it a while). */
const READ_CHUNK = 256 << 10;
/** Files at least this big go through the sink's `fromFile` when it has one (no copy through nsh). */
const FROM_FILE_MIN = 1 << 20;
/** Small tokens are gathered up to this size before they go to the sink. */
const BATCH = 64 << 10;

/** The tokens that open a NAR, a node, and each kind of node (pure; table-tested). */
export const narTokens = {
  magic: () => encodeString("nix-archive-1"),
  open: () => encodeString("("),
  close: () => encodeString(")"),
  regular: (executable: boolean, size: number) =>
    concatAll([
      encodeString("type"), encodeString("regular"),
      ...(executable ? [encodeString("executable"), encodeString("")] : []),
      encodeString("contents"), encodeU64(size),
    ]),
  symlink: (target: Uint8Array) => concatAll([encodeString("type"), encodeString("symlink"), encodeString("target"), encodeString(target)]),
  directory: () => concatAll([encodeString("type"), encodeString("directory")]),
  entry: (name: Uint8Array) => concatAll([encodeString("entry"), encodeString("("), encodeString("name"), encodeString(name), encodeString("node")]),
  padding: (size: number) => new Uint8Array((8 - (size % 8)) % 8),
};

function concatAll(parts: Uint8Array[]): Uint8Array {
  return Buffer.concat(parts);
}

/** Streams the NAR of `root` (a file, symlink or directory) into `sink`; returns its size. */
export async function dumpNar(root: string, sink: NarSink & { fromFile?: NarOutput["fromFile"] }): Promise<{ narSize: number }> {
  let narSize = 0;
  let batch: Uint8Array[] = [];
  let batched = 0;
  const flush = async () => {
    if (batched === 0) return;
    const out = batch.length === 1 ? batch[0]! : Buffer.concat(batch, batched);
    batch = [];
    batched = 0;
    await sink(out);
  };
  const put = async (bytes: Uint8Array) => {
    narSize += bytes.length;
    batch.push(bytes);
    batched += bytes.length;
    if (batched >= BATCH) await flush();
  };
  const send = async (bytes: Uint8Array) => {
    await flush();
    narSize += bytes.length;
    await sink(bytes);
  };

  const node = async (p: Buffer): Promise<void> => {
    const st = lstat(p);
    await put(narTokens.open());
    if (st.isSymbolicLink()) {
      await put(narTokens.symlink(fs.readlinkSync(p, { encoding: "buffer" })));
    } else if (st.isFile()) {
      await put(narTokens.regular((st.mode & 0o100) !== 0, st.size));
      await contents(p, st.size);
      await put(narTokens.padding(st.size));
    } else if (st.isDirectory()) {
      await put(narTokens.directory());
      const names = readdir(p).sort(Buffer.compare);
      for (const name of names) {
        await put(narTokens.entry(name));
        await node(Buffer.concat([p, Buffer.from("/"), name]));
        await put(narTokens.close());
      }
    } else {
      throw new NarDumpError(`${p}: not a regular file, symlink or directory; a store path cannot contain it`);
    }
    await put(narTokens.close());
  };

  const contents = async (p: Buffer, size: number) => {
    const fd = openRead(p);
    try {
      let left = size;
      if (sink.fromFile && size >= FROM_FILE_MIN) {
        await flush();
        await sink.fromFile(fd, 0, size); // a file that shrank ends sendfile early: an error there
        narSize += size;
        left = 0;
      }
      while (left > 0) {
        const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, left));
        const n = fs.readSync(fd, buf, 0, buf.length, null);
        if (n === 0) throw new NarDumpError(`${p}: file shrank while it was read (${size - left} of ${size} bytes)`);
        left -= n;
        await send(n === buf.length ? buf : buf.subarray(0, n));
      }
      // One more byte would mean it grew: the NAR announced the old size.
      if (fs.readSync(fd, Buffer.alloc(1), 0, 1, size) !== 0) throw new NarDumpError(`${p}: file grew while it was read (announced ${size} bytes)`);
    } finally {
      fs.closeSync(fd);
    }
  };

  await put(narTokens.magic());
  await node(Buffer.from(root));
  await flush();
  return { narSize };
}

function lstat(p: Buffer): fs.Stats {
  try {
    return fs.lstatSync(p);
  } catch (e) {
    throw new NarDumpError(`cannot read ${p}: ${(e as Error).message}`);
  }
}

function readdir(p: Buffer): Buffer[] {
  try {
    return fs.readdirSync(p, { encoding: "buffer" });
  } catch (e) {
    throw new NarDumpError(`cannot list ${p}: ${(e as Error).message}`);
  }
}

function openRead(p: Buffer): number {
  try {
    return fs.openSync(p, "r");
  } catch (e) {
    throw new NarDumpError(`cannot open ${p}: ${(e as Error).message}`);
  }
}
