// Nix's export format (libstore/export-import.cc), used by `nix-store --export/--import` and by
// the serve protocol's ImportPaths. Per path: u64 1, the NAR, u64 EXPORT_MAGIC, path, references,
// deriver (or ""), u64 0; then u64 0 ends the stream. The pieces are separate so that a caller
// can stream a NAR of any size between header and trailer.

import { type NarSink, type ReadNarOptions, readNar } from "./nar.ts";
import { WireReader, concat, encodeString, encodeStrings, encodeU64 } from "./wire.ts";

export const EXPORT_MAGIC = 0x4558494e;

export class ExportError extends Error {
  override name = "ExportError";
}

export interface ExportInfo {
  path: string;
  references: string[];
  /** Omitted (sent as "") when unknown. */
  deriver?: string;
}

export interface ExportedPath extends ExportInfo {
  narSize: number;
  /** SHA-256 of the NAR, computed while reading it. */
  narHash: Uint8Array;
}

/** Precedes each path's NAR. */
export function exportHeader(): Uint8Array {
  return encodeU64(1);
}

/** Follows each path's NAR: magic, path, references, deriver, and 0 for "no legacy signature". */
export function exportTrailer(info: ExportInfo): Uint8Array {
  return concat([
    encodeU64(EXPORT_MAGIC),
    encodeString(info.path),
    encodeStrings(info.references),
    encodeString(info.deriver ?? ""),
    encodeU64(0),
  ]);
}

/** Ends the stream. */
export function exportEnd(): Uint8Array {
  return encodeU64(0);
}

export interface ReadExportOptions {
  /** Where each path's NAR bytes go (path index from 0); by default they are only validated and hashed. */
  narSink?: (index: number) => NarSink;
  nar?: ReadNarOptions;
}

/**
 * Parses an export stream, calling `onPath` after each path's trailer (the path's name comes
 * after its NAR in this format). Returns the number of paths. Reads nothing past the final 0.
 */
export async function readExport(
  r: WireReader,
  onPath: (info: ExportedPath) => Promise<void> | void,
  opts: ReadExportOptions = {},
): Promise<number> {
  const start = r.consumed;
  for (let index = 0; ; index++) {
    const at = r.consumed - start;
    const more = await r.u64(`export item marker at export offset ${at}`);
    if (more === 0) return index;
    if (more !== 1) throw new ExportError(`expected 0 or 1 at export offset ${at}, got ${more}`);
    const sink = opts.narSink?.(index) ?? (() => {});
    const { narSize, narHash } = await readNar(r, sink, opts.nar);
    const magicAt = r.consumed - start;
    const magic = await r.u64(`export magic at export offset ${magicAt}`);
    if (magic !== EXPORT_MAGIC) {
      throw new ExportError(`expected export magic 0x${EXPORT_MAGIC.toString(16)} at export offset ${magicAt}, got 0x${magic.toString(16)}`);
    }
    const path = await r.string(`store path of export item ${index}`);
    const references = await r.strings(`references of ${path}`);
    const deriver = await r.string(`deriver of ${path}`);
    // Old Nix could append a signature; current Nix writes 0 and, like us, skips a 1's string.
    const sigAt = r.consumed - start;
    const hasSig = await r.u64(`signature marker of ${path}`);
    if (hasSig === 1) await r.string(`legacy signature of ${path}`);
    else if (hasSig !== 0) throw new ExportError(`expected 0 or 1 as signature marker of ${path} at export offset ${sigAt}, got ${hasSig}`);
    await onPath({ path, references, ...(deriver === "" ? {} : { deriver }), narSize, narHash });
  }
}
