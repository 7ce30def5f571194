// Unix sockets and poll(2) on raw fds through bun:ffi, for the daemon relay: one poll wake-up and
// one recv/send pair per message, instead of a trip through the JS event loop and socket callbacks.
// Every fd made here is close-on-exec, so nix and the daemons we spawn inherit none by accident.
import { ptr, read } from "bun:ffi";
import { errno, libc, SysError } from "./libc.ts";

export const POLLIN = 1;
export const POLLOUT = 4;
export const POLLERR = 8;
export const POLLHUP = 16;
export const POLLNVAL = 32;
export const EAGAIN = 11;
const EINTR = 4;
const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const MSG_DONTWAIT = 0x40;
// No SIGPIPE when the peer is gone: the error comes back as EPIPE instead.
const MSG_NOSIGNAL = 0x4000;
const F_GETFL = 3;
const F_SETFL = 4;
const O_NONBLOCK = 0o4000;


/** struct sockaddr_un for a path (sun_path is 108 bytes, NUL included). */
function sockaddr(path: string): Uint8Array {
  const bytes = Buffer.from(path);
  if (bytes.length > 107) throw new Error(`socket path too long (${bytes.length} bytes, at most 107): ${path}`);
  const sa = new Uint8Array(2 + 108);
  sa[0] = AF_UNIX;
  sa.set(bytes, 2);
  return sa;
}

/** A listening unix socket bound to `path` (blocking, close-on-exec). */
export function listenUnix(path: string, backlog = 64): number {
  const fd = libc().socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new SysError("socket", errno(), path);
  const sa = sockaddr(path);
  if (libc().bind(fd, sa, sa.length) !== 0 || libc().listen(fd, backlog) !== 0) {
    const e = errno();
    close(fd);
    throw new SysError("bind/listen", e, path);
  }
  return fd;
}

/** A connected unix socket, non-blocking once connected. Throws SysError (ENOENT, ECONNREFUSED, …). */
export function connectUnix(path: string): number {
  const fd = libc().socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new SysError("socket", errno(), path);
  const sa = sockaddr(path);
  // Blocking connect: a local daemon accepts at once; it only waits while its backlog is full.
  for (;;) {
    if (libc().connect(fd, sa, sa.length) === 0) break;
    const e = errno();
    if (e === EINTR) continue;
    close(fd);
    throw new SysError("connect", e, path);
  }
  setNonBlocking(fd);
  return fd;
}

/** A connected pair of unix stream sockets, both close-on-exec and blocking. */
export function socketPair(): [number, number] {
  const fds = new Int32Array(2);
  if (libc().socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) !== 0) throw new SysError("socketpair", errno(), "");
  return [fds[0]!, fds[1]!];
}

export function setNonBlocking(fd: number): void {
  const flags = libc().fcntl(fd, F_GETFL, 0);
  if (flags < 0 || libc().fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) throw new SysError("fcntl", errno(), `fd ${fd}`);
}

/** A pending connection as a non-blocking fd, or -1 if there is none right now. */
export function accept(fd: number): number {
  for (;;) {
    const c = libc().accept4(fd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c >= 0) return c;
    const e = errno();
    if (e === EINTR) continue;
    if (e === EAGAIN) return -1;
    throw new SysError("accept4", e, `fd ${fd}`);
  }
}

/** Bytes read (0: end of stream), or -errno (-EAGAIN: nothing now). */
export function recv(fd: number, buf: Uint8Array, len = buf.length): number {
  for (;;) {
    const n = libc().recv(fd, buf, len, MSG_DONTWAIT) as number;
    if (n >= 0) return n;
    const e = errno();
    if (e !== EINTR) return -e;
  }
}

/** Bytes written, or -errno (-EAGAIN: the peer's buffer is full; -EPIPE: it is gone). */
export function send(fd: number, buf: Uint8Array, off = 0, len = buf.length - off): number {
  for (;;) {
    const n = libc().send(fd, off === 0 ? buf : ptr(buf, off), len, MSG_DONTWAIT | MSG_NOSIGNAL) as number;
    if (n >= 0) return n;
    const e = errno();
    if (e !== EINTR) return -e;
  }
}

/** read(2) for fds that are not sockets (a pipe); same results as recv. */
export function readFd(fd: number, buf: Uint8Array): number {
  for (;;) {
    const n = libc().read(fd, buf, buf.length) as number;
    if (n >= 0) return n;
    const e = errno();
    if (e !== EINTR) return -e;
  }
}

export function close(fd: number): void {
  libc().close(fd);
}

/**
 * A reusable struct pollfd array. Each entry is one Int32 for the fd and one for the two shorts
 * `events` (low half) and `revents` (high half), which is their little-endian layout.
 */
export class PollSet {
  private words = new Int32Array(64);
  length = 0;

  clear(): void {
    this.length = 0;
  }

  add(fd: number, events: number): number {
    if (2 * this.length + 2 > this.words.length) {
      const bigger = new Int32Array(this.words.length * 2);
      bigger.set(this.words);
      this.words = bigger;
    }
    this.words[2 * this.length] = fd;
    this.words[2 * this.length + 1] = events & 0xffff;
    return this.length++;
  }

  revents(i: number): number {
    return (this.words[2 * i + 1]! >>> 16) & 0xffff;
  }

  /** poll(2): the number of entries with events, 0 on timeout (or EINTR). */
  wait(timeoutMs: number): number {
    const n = libc().poll(this.words, this.length, timeoutMs);
    if (n >= 0) return n;
    const e = errno();
    if (e === EINTR) return 0;
    throw new SysError("poll", e, `${this.length} fds`);
  }
}
