// OpenPBS's libpbs (the IFL) through bun:ffi. One FFI module per native library: the symbol table
// below is all nsh binds from libpbs, and only this module opens it. libpbs.so.0 has no RUNPATH and
// rarely sits on the loader's path, so it is opened by its full path (pbs-lib, else
// PBS_EXEC/lib/libpbs.so.0 from pbs.conf), once per process, on first use.
//
// Every IFL call is synchronous and may wait for the server (connect, DIS reads): nsh makes them in
// a child process (pbs-client.ts), never in the hook's own event loop.
//
// NSH_FFI_TRACE=1 prints every call and its result to stderr. Job ids, attribute names and error
// texts are shown; attribute values, scripts and environments only by their length.
import { CString, FFIType, type Pointer, ptr as addressOf, read, toArrayBuffer } from "bun:ffi";
import { type Symbols, openOnce, tracedIfAsked } from "../sys/ffi-trace.ts";
import { libc } from "../sys/libc.ts";
import type { PbsAttr, PbsJobRecord } from "./pbs-shapes.ts";

const { i32, ptr, cstring } = FFIType;
const symbols = {
  pbs_connect: { args: [ptr], returns: i32 },
  pbs_disconnect: { args: [i32], returns: i32 },
  pbs_default: { args: [], returns: cstring },
  pbs_submit: { args: [i32, ptr, ptr, ptr, ptr], returns: ptr },
  pbs_statjob: { args: [i32, ptr, ptr, ptr], returns: ptr },
  pbs_statserver: { args: [i32, ptr, ptr], returns: ptr },
  pbs_statfree: { args: [ptr], returns: FFIType.void },
  pbs_deljob: { args: [i32, ptr, ptr], returns: i32 },
  pbs_deljoblist: { args: [i32, ptr, i32, ptr], returns: ptr },
  pbs_delstatfree: { args: [ptr], returns: FFIType.void },
  pbs_geterrmsg: { args: [i32], returns: cstring },
  pbse_to_txt: { args: [i32], returns: cstring },
  __pbs_errno_location: { args: [], returns: ptr },
} as const;

export type PbsSymbols = Symbols<typeof symbols>;

/** Why libpbs cannot be loaded, with dlopen's own words. */
export class LibpbsLoadError extends Error {}

/** libpbs at `file`, opened once per process (dlopen cannot take a library back safely). */
export function openLibpbs(file: string, env: Record<string, string | undefined> = process.env): PbsSymbols {
  const syms = openOnce(file, symbols, (message) => new LibpbsLoadError(message));
  return tracedIfAsked(env, "libpbs", syms, (value, symbol) => show(value, SHOWN_STRINGS.has(symbol)));
}

/** Calls whose string arguments and results are ids, server names or messages: traced in full. */
const SHOWN_STRINGS = new Set([
  "pbs_connect", "pbs_deljob", "pbs_statjob", "pbs_default", "pbs_geterrmsg", "pbse_to_txt",
]);

function show(arg: unknown, full: boolean): string {
  if (arg === null || arg === 0) return "NULL";
  if (Buffer.isBuffer(arg) && full) return JSON.stringify(arg.toString("utf8").replace(/\0+$/, ""));
  if (ArrayBuffer.isView(arg)) return `<${arg.byteLength} bytes>`;
  if (typeof arg === "string") return full ? JSON.stringify(arg) : `<${arg.length} chars>`;
  if (typeof arg === "number") return arg > 0xffffff ? "ptr" : String(arg);
  return String(arg);
}

/** pbs_errno of the calling thread. */
export function pbsErrno(lib: PbsSymbols): number {
  const p = lib.__pbs_errno_location() as Pointer | null;
  return p ? read.i32(p, 0) : 0;
}

/** A JS string as a NUL-terminated C string buffer (kept alive by the caller during the call). */
export const cstr = (s: string): Buffer => Buffer.from(`${s}\0`, "utf8");

/** A C string in malloc'd memory: for values libpbs may free or replace (pbs_submit's path attributes). */
function mallocString(s: string): Pointer {
  const bytes = cstr(s);
  const p = libc().malloc(bytes.length) as Pointer | null;
  if (!p) throw new Error("malloc failed");
  new Uint8Array(toArrayBuffer(p, 0, bytes.length)).set(bytes);
  return p;
}

const ATTROPL_SIZE = 40; // {next, name, resource, value, enum batch_op op}
const BATCH_OP_SET = 0;

/**
 * An attropl list for pbs_submit. The structs and names live in JS buffers held by `keep`; values
 * are malloc'd because pbs_submit frees and replaces the path ones. They are not freed afterwards:
 * the client process ends after its request.
 */
export function attroplList(attrs: PbsAttr[]): { head: Pointer | null; keep: Buffer[] } {
  const keep: Buffer[] = [];
  const nodes = attrs.map(() => Buffer.alloc(ATTROPL_SIZE));
  attrs.forEach((a, i) => {
    const node = nodes[i]!;
    const name = cstr(a.name);
    keep.push(node, name);
    node.writeBigUInt64LE(i + 1 < nodes.length ? BigInt(addressOf(nodes[i + 1]!)) : 0n, 0);
    node.writeBigUInt64LE(BigInt(addressOf(name)), 8);
    if (a.resource !== undefined) {
      const res = cstr(a.resource);
      keep.push(res);
      node.writeBigUInt64LE(BigInt(addressOf(res)), 16);
    }
    node.writeBigUInt64LE(BigInt(mallocString(a.value)), 24);
    node.writeInt32LE(BATCH_OP_SET, 32);
  });
  return { head: nodes.length > 0 ? addressOf(nodes[0]!) : null, keep };
}

/** An attrl list naming the attributes pbs_statjob should return. */
export function attrlNames(names: string[]): { head: Pointer | null; keep: Buffer[] } {
  const { head, keep } = attroplList(names.map((name) => ({ name, value: "" })));
  return { head, keep };
}

const str = (p: number): string => (p ? new CString(p as Pointer).toString() : "");

/** A batch_status list ({next, name, attribs, text}; attribs an attrl list) read into JS. */
export function readBatchStatus(head: Pointer | null): PbsJobRecord[] {
  const out: PbsJobRecord[] = [];
  for (let p = head as number | null; p; p = read.ptr(p as Pointer, 0)) {
    const attrs: PbsAttr[] = [];
    for (let a = read.ptr(p as Pointer, 16); a; a = read.ptr(a as Pointer, 0)) {
      const resource = str(read.ptr(a as Pointer, 16));
      const name = str(read.ptr(a as Pointer, 8));
      attrs.push({ name, ...(resource ? { resource } : {}), value: str(read.ptr(a as Pointer, 24)) });
    }
    out.push({ id: str(read.ptr(p as Pointer, 8)), attrs });
  }
  return out;
}

/** A batch_deljob_status list ({next, name, int code}) read into JS: the jobs pbs_deljoblist did not delete. */
export function readDeljobStatus(head: Pointer | null): { id: string; code: number }[] {
  const out: { id: string; code: number }[] = [];
  for (let p = head as number | null; p; p = read.ptr(p as Pointer, 0)) {
    out.push({ id: str(read.ptr(p as Pointer, 8)), code: read.i32(p as Pointer, 16) });
  }
  return out;
}

/** An array of C string pointers (char **) for pbs_deljoblist. */
export function stringArray(items: string[]): { head: Pointer; keep: Buffer[] } {
  const keep = items.map(cstr);
  const arr = Buffer.alloc(8 * (items.length + 1));
  keep.forEach((b, i) => arr.writeBigUInt64LE(BigInt(addressOf(b)), 8 * i));
  keep.push(arr);
  return { head: addressOf(arr), keep };
}
