// The file calls the build hook makes before its first answer (read nsh.conf, check the token file,
// write to Nix), through libc instead of node:fs: in a compiled Bun, loading node:fs costs ~2 ms of
// CPU, 40% of a whole hello world, and every build starts a hook (bench/startup.ts). Errors read as
// node:fs's do ("ENOENT: no such file or directory, open '/x'") and carry the same `code`.
import { cstr, errno, libc as libcAll, libcCore as libc, ptr } from "./libc.ts";

const O_RDONLY = 0;
const O_CLOEXEC = 0o2000000;
const F_OK = 0;
const R_OK = 4;
const F_GETFD = 1;
const SEEK_CUR = 1;
const POLLIN = 1;
const [EINTR, EAGAIN, ESPIPE] = [4, 11, 29];
let encoder: TextEncoder | undefined;

const errors: Record<number, [string, string]> = {
  1: ["EPERM", "operation not permitted"],
  2: ["ENOENT", "no such file or directory"],
  5: ["EIO", "i/o error"],
  9: ["EBADF", "bad file descriptor"],
  11: ["EAGAIN", "resource temporarily unavailable"],
  13: ["EACCES", "permission denied"],
  20: ["ENOTDIR", "not a directory"],
  21: ["EISDIR", "illegal operation on a directory"],
  24: ["EMFILE", "too many open files"],
  32: ["EPIPE", "broken pipe"],
  36: ["ENAMETOOLONG", "name too long"],
  40: ["ELOOP", "too many symbolic links encountered"],
};

export class FileError extends Error {
  readonly code: string;
  constructor(
    readonly errno: number,
    readonly syscall: string,
    readonly path?: string,
  ) {
    const [code, text] = errors[errno] ?? [`E${errno}`, `errno ${errno}`];
    super(`${code}: ${text}, ${syscall}${path === undefined ? "" : ` '${path}'`}`);
    this.code = code;
  }
}

/** Runs a call that returns -1 on failure, again after EINTR; throws a FileError for any other errno. */
function retrying(call: () => number, syscall: string, path?: string): number {
  for (;;) {
    const r = call();
    if (r >= 0) return r;
    const e = errno();
    if (e !== EINTR) throw new FileError(e, syscall, path);
  }
}

/** Whether `path` exists (following symlinks), as fs.existsSync says it. */
export function fileExists(path: string): boolean {
  return libc().access(cstr(path), F_OK) === 0;
}

/** Whether this process may read `path` (access(2), as fs.accessSync(path, R_OK)). */
export function canRead(path: string): boolean {
  return libc().access(cstr(path), R_OK) === 0;
}

/** The whole file as UTF-8 text (as fs.readFileSync(path, "utf8"): invalid bytes become U+FFFD, a BOM stays). */
export function readTextFile(path: string): string {
  const name = cstr(path);
  const fd = retrying(() => libc().open(name, O_RDONLY | O_CLOEXEC, 0), "open", path);
  try {
    const parts: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      // small first (nsh.conf is): each 4 KiB page of a new buffer is a page fault
      const buf = new Uint8Array(total < 1 << 14 ? 1 << 14 : total);
      const n = retrying(() => Number(libc().read(fd, ptr(buf), buf.length)), "read", path);
      if (n === 0) break;
      parts.push(buf.subarray(0, n));
      total += n;
    }
    const all = parts.length === 1 ? parts[0]! : new Uint8Array(total);
    if (parts.length > 1) parts.reduce((at, part) => (all.set(part, at), at + part.length), 0);
    return new TextDecoder("utf-8", { ignoreBOM: true }).decode(all);
  } finally {
    libc().close(fd);
  }
}

/** Whether `fd` is an open file descriptor. */
export function fdIsOpen(fd: number): boolean {
  return libc().fcntl(fd, F_GETFD, 0) >= 0;
}

/** Whether `fd` is a pipe, FIFO or socket (lseek fails with ESPIPE), without fstat. */
export function isPipeLike(fd: number): boolean {
  return Number(libc().lseek(fd, 0, SEEK_CUR)) < 0 && errno() === ESPIPE;
}

/** Writes all of `data` to `fd`, waiting out a non-blocking pipe that is full (1 ms at a time). */
export function writeAllSync(fd: number, data: Uint8Array | string): void {
  let buf = typeof data === "string" ? (encoder ??= new TextEncoder()).encode(data) : data;
  while (buf.length > 0) {
    const n = Number(libc().write(fd, ptr(buf), buf.length));
    if (n >= 0) {
      buf = buf.subarray(n);
      continue;
    }
    const e = errno();
    if (e === EAGAIN) Bun.sleepSync(1);
    else if (e !== EINTR) throw new FileError(e, "write");
  }
}

/**
 * What `fd` has ready now, without waiting: the bytes (a fresh buffer), "eof", or undefined when
 * nothing is there yet or the fd cannot be polled (then read it the usual, asynchronous way).
 */
export function readReady(fd: number, max = 1 << 14): Uint8Array | "eof" | undefined {
  // struct pollfd: int fd; short events, revents (little-endian). Not from an array literal: that
  // constructor path costs ~30 µs of CPU on its first use, before the hook's first answer.
  const pollFd = new Int32Array(2);
  pollFd[0] = fd;
  pollFd[1] = POLLIN;
  if (libc().poll(ptr(pollFd), 1, 0) !== 1) return undefined;
  const buf = new Uint8Array(max);
  const n = Number(libc().read(fd, ptr(buf), max));
  if (n < 0) return undefined;
  return n === 0 ? "eof" : buf.subarray(0, n);
}

/** The target of symlink `path` (fs.readlinkSync). */
export function readLink(path: string): string {
  const buf = new Uint8Array(4096);
  const n = retrying(() => Number(libcAll().readlink(cstr(path), ptr(buf), buf.length)), "readlink", path);
  return new TextDecoder().decode(buf.subarray(0, n));
}

/** `path` with every symlink, `.` and `..` resolved (fs.realpathSync). */
export function realPath(path: string): string {
  const buf = new Uint8Array(4097); // PATH_MAX and a NUL
  if (libcAll().realpath(cstr(path), ptr(buf)) === null) throw new FileError(errno(), "realpath", path);
  return new TextDecoder().decode(buf.subarray(0, buf.indexOf(0)));
}
