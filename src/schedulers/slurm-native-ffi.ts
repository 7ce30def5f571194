// The compiled slurm-native shim (slurm-native-shim.ts) through bun:ffi. One FFI module per native
// library: the symbol table below is all nsh binds from the shim, and only this module opens it
// (libslurm comes in as the shim's dependency and the shim's init promotes it to RTLD_GLOBAL).
//
// NSH_FFI_TRACE=1 prints every call and its result to stderr. Strings travel as byte buffers and
// are traced as their length only: a job's script and environment are the user's business.
import { FFIType } from "bun:ffi";
import { type Symbols, openOnce, tracedIfAsked } from "../sys/ffi-trace.ts";
import { SHIM_ABI } from "./slurm-native-shim.ts";

const { i32, i64_fast, u32, ptr, cstring } = FFIType;
const symbols = {
  nsh_shim_abi: { args: [], returns: i32 },
  nsh_shim_slurm_version: { args: [], returns: i64_fast },
  nsh_shim_init: { args: [ptr, ptr, i32, ptr, i32], returns: i32 },
  nsh_shim_submit: { args: [ptr, ptr, ptr, ptr, i32, ptr, ptr, ptr, ptr, ptr, ptr, ptr, i32], returns: i64_fast },
  nsh_shim_jobs: { args: [ptr, ptr, i32, ptr, i64_fast, ptr, i32], returns: i64_fast },
  nsh_shim_cancel: { args: [u32, i32], returns: i32 },
  nsh_shim_ping: { args: [], returns: i32 },
  nsh_shim_strerror: { args: [i32], returns: cstring },
} as const;

export type ShimSymbols = Symbols<typeof symbols>;

/** Why a shim cannot be loaded, with dlopen's own words. */
export class ShimLoadError extends Error {}

/** The shim at `file`, opened once per process (dlopen cannot take a library back safely). */
export function openShim(file: string, env: Record<string, string | undefined> = process.env): ShimSymbols {
  const syms = openOnce(file, symbols, (message) => new ShimLoadError(message), (lib) => {
    const abi = lib.nsh_shim_abi();
    if (abi !== SHIM_ABI) throw new ShimLoadError(`${file} speaks shim ABI ${abi}, this nsh ${SHIM_ABI}`);
  });
  // strerror's text is Slurm's message, not user data: shown in full.
  return tracedIfAsked(env, "slurm-shim", syms, (value, symbol, role) =>
    role === "result" && symbol === "nsh_shim_strerror" ? JSON.stringify(value) : show(value));
}

function show(arg: unknown): string {
  if (arg instanceof Uint32Array) return `[${[...arg].join(",")}]`;
  if (ArrayBuffer.isView(arg)) return `<${arg.byteLength} bytes>`;
  if (arg === null) return "NULL";
  if (typeof arg === "string") return `<${arg.length} chars>`;
  return String(arg);
}

/** A JS string as a NUL-terminated C string buffer. */
export const cstr = (s: string): Buffer => Buffer.from(`${s}\0`, "utf8");

/** The text a C function wrote into `buf` (up to its first NUL). */
export function cText(buf: Buffer): string {
  const end = buf.indexOf(0);
  return buf.toString("utf8", 0, end < 0 ? buf.length : end);
}
