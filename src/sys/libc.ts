// The libc calls Node and Bun lack (BSD flock, mkfifo, pipe2), through bun:ffi.
// One FFI module per native library: the symbol table below is all we bind from libc.
import { dlopen, FFIType, ptr, read } from "bun:ffi";

const symbols = {
  flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  mkfifo: { args: [FFIType.cstring, FFIType.u32], returns: FFIType.i32 },
  pipe2: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  __errno_location: { args: [], returns: FFIType.ptr },
} as const;

type Lib = ReturnType<typeof dlopen<typeof symbols>>;
let lib: Lib | undefined;
// Opened on first use: personalities that never lock or make FIFOs pay nothing.
function libc(): Lib["symbols"] {
  lib ??= dlopen("libc.so.6", symbols);
  return lib.symbols;
}

export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;
export const O_CLOEXEC = 0o2000000;

const errnoNames: Record<number, string> = {
  1: "EPERM", 2: "ENOENT", 4: "EINTR", 9: "EBADF", 11: "EWOULDBLOCK", 13: "EACCES", 17: "EEXIST",
  22: "EINVAL", 24: "EMFILE", 28: "ENOSPC", 30: "EROFS",
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

function errno(): number {
  const p = libc().__errno_location();
  return p === null ? 0 : read.i32(p, 0);
}

const cstr = (s: string) => Buffer.from(`${s}\0`);

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
