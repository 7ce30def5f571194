// The libc calls Node and Bun lack (BSD flock, mkfifo, pipe2; raw unix sockets and poll(2) for the
// daemon relay in sock.ts; write and sendfile for pipe-writer.ts; waitpid), and the few file calls
// the hook makes before its first answer (file.ts: node:fs alone costs ~2 ms of CPU to load in a
// compiled Bun), through bun:ffi. One FFI module per native library: the symbol table below is all
// we bind from libc, and only this module opens it. No stat family: glibc before 2.33 has no
// `fstat` symbol, and one missing symbol fails the whole dlopen.
import type * as BunFfi from "bun:ffi";

// bun:ffi's JS module costs ~0.6 ms of CPU to load in a compiled Bun, a quarter of the hook's way to
// its first answer (bench/startup.ts). Bun.FFI is the native layer under it: the module's dlopen only
// adds a throw for the Error it returns, its ptr and read are these. The module where Bun has no Bun.FFI.
type Ffi = Pick<typeof BunFfi, "dlopen" | "ptr" | "read">;
const ffi: Ffi = (Bun as unknown as { FFI?: Ffi }).FFI ?? builtinModule<Ffi>("bun:ffi");
function dlopen<S extends Record<string, BunFfi.FFIFunction>>(lib: string, symbols: S): BunFfi.Library<S> {
  const opened: BunFfi.Library<S> | Error = ffi.dlopen(lib, symbols);
  if (opened instanceof Error) throw opened;
  return opened;
}
export const ptr: Ffi["ptr"] = (view, offset) => (offset === undefined ? ffi.ptr(view) : ffi.ptr(view, offset));
const read = ffi.read;

// bun:ffi's FFIType values (test/unit/libc-ffi-types.test.ts checks them against the module's).
export const FFI_TYPES = {
  i32: 5 as BunFfi.FFIType.i32,
  u32: 6 as BunFfi.FFIType.u32,
  u64: 8 as BunFfi.FFIType.u64,
  ptr: 12 as BunFfi.FFIType.ptr,
  cstring: 14 as BunFfi.FFIType.cstring,
  i64_fast: 15 as BunFfi.FFIType.i64_fast,
} as const;
const { i32, i64_fast, u32, u64, ptr: p, cstring } = FFI_TYPES;
/** What the build hook calls before its first answer (file.ts): bound alone, as each symbol costs binding time. */
const core = {
  isatty: { args: [i32], returns: i32 },
  // open is variadic; (ptr, int, int) is ABI-safe as for fcntl.
  open: { args: [cstring, i32, i32], returns: i32 },
  access: { args: [cstring, i32], returns: i32 },
  lseek: { args: [i32, i64_fast, i32], returns: i64_fast },
  // fcntl is variadic; (int, int, int) is ABI-safe on x86_64 and aarch64 for F_GETFL/F_SETFL.
  fcntl: { args: [i32, i32, i32], returns: i32 },
  poll: { args: [p, u64, i32], returns: i32 },
  read: { args: [i32, p, u64], returns: i64_fast },
  write: { args: [i32, p, u64], returns: i64_fast },
  close: { args: [i32], returns: i32 },
  __errno_location: { args: [], returns: p },
} as const;
// Made when first needed: a table of 16 definitions, each key a new object shape, costs the hook heap blocks
// before its first answer (bench/README.md "### startup").
const rest = () => ({
  readlink: { args: [cstring, p, u64], returns: i64_fast },
  realpath: { args: [cstring, p], returns: p },
  flock: { args: [i32, i32], returns: i32 },
  mkfifo: { args: [cstring, u32], returns: i32 },
  pipe2: { args: [p, i32], returns: i32 },
  socket: { args: [i32, i32, i32], returns: i32 },
  socketpair: { args: [i32, i32, i32, p], returns: i32 },
  bind: { args: [i32, p, u64], returns: i32 },
  listen: { args: [i32, i32], returns: i32 },
  accept4: { args: [i32, p, p, i32], returns: i32 },
  connect: { args: [i32, p, u64], returns: i32 },
  recv: { args: [i32, p, u64, i32], returns: i64_fast },
  send: { args: [i32, p, u64, i32], returns: i64_fast },
  sendfile: { args: [i32, i32, p, u64], returns: i64_fast },
  waitpid: { args: [i32, p, i32], returns: i32 },
  // for C libraries that take ownership of (free or replace) what they are given (libpbs's pbs_submit)
  malloc: { args: [u64], returns: p },
}) as const;

type Core = BunFfi.ConvertFns<typeof core>;
type All = Core & BunFfi.ConvertFns<ReturnType<typeof rest>>;
let coreSymbols: Core | undefined;
let allSymbols: All | undefined;
/** The hook's few symbols (`core`), opened on first use. */
export function libcCore(): Core {
  coreSymbols ??= dlopen("libc.so.6", core).symbols;
  return coreSymbols;
}
/** All bound symbols, opened on first use: personalities that never call libc pay nothing. */
export function libc(): All {
  allSymbols ??= { ...libcCore(), ...dlopen("libc.so.6", rest()).symbols };
  return allSymbols;
}

export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;
export const O_CLOEXEC = 0o2000000;

const errnoNames: Record<number, string> = {
  1: "EPERM", 2: "ENOENT", 4: "EINTR", 5: "EIO", 9: "EBADF", 11: "EWOULDBLOCK", 13: "EACCES", 17: "EEXIST",
  20: "ENOTDIR", 21: "EISDIR", 22: "EINVAL", 24: "EMFILE", 28: "ENOSPC", 29: "ESPIPE", 30: "EROFS", 32: "EPIPE",
  36: "ENAMETOOLONG", 40: "ELOOP",
};

export class SysError extends Error {
  constructor(
    readonly call: string,
    readonly errno: number,
    detail: string,
  ) {
    super(`${call}(${detail}) failed: ${errnoNames[errno] ?? `errno ${errno}`}`);
  }
  get code(): string {
    return errnoNames[this.errno] ?? `errno ${this.errno}`;
  }
}

export function errno(): number {
  const p = libcCore().__errno_location();
  return p === null ? 0 : read.i32(p, 0);
}

/** A NUL-terminated copy of `s` (TextEncoder: the first Buffer use costs start-up CPU). */
let encoder: TextEncoder | undefined;

/**
 * A built-in module, loaded now and synchronously (for the rare paths that need node:fs): neither
 * `require` (its set-up costs start-up CPU in every module of the hook's way) nor a static import.
 */
export function builtinModule<T>(name: string): T {
  return (process as unknown as { getBuiltinModule(name: string): T }).getBuiltinModule(name);
}
export const cstr = (s: string) => (encoder ??= new TextEncoder()).encode(`${s}\0`);

/**
 * Lowers this process's priority by `by` niceness steps (and that of the processes it starts from now
 * on). Best effort: a limit that forbids it leaves the priority as it was.
 */
export function lowerPriority(by: number): void {
  if (!(by > 0)) return;
  try {
    const os = builtinModule<typeof import("node:os")>("node:os");
    os.setPriority(Math.min(19, os.getPriority() + by));
  } catch {}
}

/** flock(2); returns false only for LOCK_NB when the lock is held elsewhere. */
export function flock(fd: number, op: number): boolean {
  for (;;) {
    if (libc().flock(fd, op) === 0) return true;
    const e = errno();
    if (e === 4) continue; // EINTR: a signal arrived while blocked
    if (e === 11 && op & LOCK_NB) return false;
    throw new SysError("flock", e, `fd ${fd}`);
  }
}

export function mkfifo(path: string, mode: number): void {
  if (libc().mkfifo(cstr(path), mode) !== 0) throw new SysError("mkfifo", errno(), path);
}

/** A pipe as [readFd, writeFd]. */
export function pipe(flags = O_CLOEXEC): [number, number] {
  const fds = new Int32Array(2);
  if (libc().pipe2(ptr(fds), flags) !== 0) throw new SysError("pipe2", errno(), "");
  return [fds[0]!, fds[1]!];
}

/** Whether fd is a terminal: node:tty's isatty without loading node:tty (~5 ms of CPU in a compiled Bun). */
export function isTty(fd: number): boolean {
  return libcCore().isatty(fd) === 1;
}

const WNOHANG = 1;

/** Reaps `pid` if it has exited (without blocking); true once it is gone. For loops that never yield to Bun's own reaping. */
export function reapIfExited(pid: number): boolean {
  const r = libc().waitpid(pid, null, WNOHANG);
  return r === pid || (r < 0 && errno() === 10); // ECHILD: reaped already
}
