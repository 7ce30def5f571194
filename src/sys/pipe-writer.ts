// Writing into a pipe whose other end is a child's stdin, from bytes or straight from a file
// (sendfile(2): the kernel copies, nsh never touches the data). The fd is non-blocking; when the
// pipe is full we wait in poll(2) for at most WAIT_MS at a time and then give the event loop a
// turn, so the child's output and our timers still run during a long transfer.
import { ptr } from "bun:ffi";
import fs from "node:fs";
import { errno, libc, SysError } from "./libc.ts";
import { close, EAGAIN, POLLERR, POLLHUP, POLLOUT, PollSet, setNonBlocking } from "./sock.ts";

const EINTR = 4;
const EPIPE = 32;
const F_SETPIPE_SZ = 1031;
const WAIT_MS = 50;
/** One sendfile call moves at most this much, so progress can be reported between calls. */
const SENDFILE_STEP = 4 << 20;
/** sendfile's answers for "not from this file": copy through a buffer of COPY_STEP instead. */
const NO_SENDFILE = new Set([22 /* EINVAL */, 38 /* ENOSYS */, 95 /* EOPNOTSUPP */]);
const COPY_STEP = 1 << 20;

export class PipeClosedError extends Error {}

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export class PipeWriter {
  private readonly poll = new PollSet();
  private closed = false;

  constructor(
    readonly fd: number,
    /** What the reader is, for messages. */
    private readonly reader: string,
  ) {
    setNonBlocking(fd);
    // A bigger pipe means fewer wake-ups of both sides; the kernel may refuse (fine).
    libc().fcntl(fd, F_SETPIPE_SZ, 1 << 20);
  }

  async write(bytes: Uint8Array): Promise<void> {
    let off = 0;
    while (off < bytes.length) {
      const n = libc().write(this.fd, off === 0 ? bytes : ptr(bytes, off), bytes.length - off) as number;
      if (n > 0) off += n;
      else await this.retry("write");
    }
  }

  /**
   * `length` bytes of `inFd` from `offset`, copied kernel to kernel. Where the file's filesystem
   * cannot do sendfile (EINVAL, ENOSYS, EOPNOTSUPP: some FUSE and network filesystems, procfs) the
   * rest goes through a buffer instead.
   */
  async writeFromFile(inFd: number, offset: number, length: number, onBytes: (n: number) => void = () => {}): Promise<void> {
    const pos = new BigInt64Array([BigInt(offset)]);
    let left = length;
    while (left > 0) {
      const n = libc().sendfile(this.fd, inFd, pos, Math.min(left, SENDFILE_STEP)) as number;
      if (n > 0) {
        left -= n;
        onBytes(n);
        await yieldToLoop();
      } else if (n === 0) throw new SysError("sendfile", 0, `the file ended ${length - left} bytes into ${length}`);
      else if (NO_SENDFILE.has(errno())) return this.copyThroughBuffer(inFd, Number(pos[0]), left, length, onBytes);
      else await this.retry("sendfile");
    }
  }

  private async copyThroughBuffer(inFd: number, offset: number, left: number, length: number, onBytes: (n: number) => void): Promise<void> {
    const buf = Buffer.allocUnsafe(Math.min(left, COPY_STEP));
    while (left > 0) {
      const n = fs.readSync(inFd, buf, 0, Math.min(left, buf.length), offset);
      if (n === 0) throw new SysError("read", 0, `the file ended ${length - left} bytes into ${length}`);
      await this.write(buf.subarray(0, n));
      offset += n;
      left -= n;
      onBytes(n);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    close(this.fd);
  }

  /** After a failed write: wait for room on EAGAIN, go on after EINTR, fail otherwise. */
  private async retry(call: string): Promise<void> {
    const e = errno();
    if (e === EINTR) return;
    if (e === EPIPE) throw new PipeClosedError(`${this.reader} stopped reading its input`);
    if (e !== EAGAIN) throw new SysError(call, e, `pipe to ${this.reader}`);
    this.poll.clear();
    this.poll.add(this.fd, POLLOUT);
    this.poll.wait(WAIT_MS);
    if (this.poll.revents(0) & (POLLERR | POLLHUP)) throw new PipeClosedError(`${this.reader} stopped reading its input`);
    await yieldToLoop();
  }
}
