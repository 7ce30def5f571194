// Asks the kernel (sock_diag netlink) about unix sockets by inode: how many bytes wait in a
// socket's receive queue and how much of its peer's send buffer is in use, without touching the
// socket. The messages are encoded and decoded in unix-diag.ts.
import fs from "node:fs";
import { errno, libc, SysError } from "./libc.ts";
import { parseSocketLink } from "./proc.ts";
import { close, recv, send, socketPair } from "./sock.ts";
import {
  decodeUnixDiagReply, encodeUnixDiagRequest, NETLINK_SOCK_DIAG, SK_MEMINFO_SNDBUF, UDIAG_SHOW_MEMINFO,
  UDIAG_SHOW_PEER, UDIAG_SHOW_RQLEN, type UnixDiagInfo,
} from "./unix-diag.ts";

const AF_NETLINK = 16;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const ENOENT = 2;

export class SockDiag {
  private seq = 0;
  private readonly buf = new Uint8Array(8192);

  private constructor(private fd: number) {}

  /** A sock_diag netlink socket (close-on-exec). Throws SysError if the kernel refuses one. */
  static open(): SockDiag {
    const fd = libc().socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0) throw new SysError("socket", errno(), "AF_NETLINK, NETLINK_SOCK_DIAG");
    return new SockDiag(fd);
  }

  /**
   * What the kernel says about the unix socket `inode` (UDIAG_SHOW_* flags in `show`), or undefined
   * if there is no such unix socket in our network namespace (closed, not unix, or elsewhere).
   */
  query(inode: number, show: number): UnixDiagInfo | undefined {
    if (this.fd < 0) throw new Error("sock_diag: socket closed");
    const seq = ++this.seq;
    const req = encodeUnixDiagRequest(inode, show, seq);
    const w = send(this.fd, req);
    if (w !== req.length) throw new SysError("send", w < 0 ? -w : 0, "sock_diag");
    // The kernel answers within send(): the reply is queued when it returns.
    for (;;) {
      const n = recv(this.fd, this.buf);
      if (n < 0) throw new SysError("recv", -n, "sock_diag");
      const r = decodeUnixDiagReply(this.buf.subarray(0, n));
      if (r.seq !== seq) continue; // a late answer to an earlier request
      if (r.kind === "info") return r.info;
      if (r.kind === "error" && r.errno === ENOENT) return undefined;
      throw r.kind === "error" ? new SysError("sock_diag", r.errno, `inode ${inode}`) : new Error(`sock_diag: unexpected message type ${r.type}`);
    }
  }

  close(): void {
    if (this.fd >= 0) close(this.fd);
    this.fd = -1;
  }
}

/** The inode of one of our own fds that is a socket. */
function socketInodeOfFd(fd: number): number {
  const ino = parseSocketLink(fs.readlinkSync(`/proc/self/fd/${fd}`));
  if (ino === undefined) throw new Error(`fd ${fd} is not a socket`);
  return ino;
}

/**
 * Checks on a socketpair of our own that the kernel answers the way we read it: bytes (not
 * packets) in the receive queue, the peer's inode, and the sender's send-buffer use and size.
 * Throws, saying what is missing, if not (an old kernel, no unix_diag, a seccomp filter).
 */
export function probeSockDiag(diag: SockDiag): void {
  const [a, b] = socketPair();
  try {
    const sent = send(a, new Uint8Array(100));
    if (sent !== 100) throw new Error(`could not write to a socketpair (${sent})`);
    const ia = socketInodeOfFd(a);
    const rb = diag.query(socketInodeOfFd(b), UDIAG_SHOW_RQLEN | UDIAG_SHOW_PEER);
    if (rb?.rqueue !== 100 || rb.peer !== ia) {
      throw new Error(`sock_diag reports receive queue ${rb?.rqueue} and peer ${rb?.peer} (expected 100 bytes and ${ia})`);
    }
    const ra = diag.query(ia, UDIAG_SHOW_RQLEN | UDIAG_SHOW_MEMINFO);
    const sndbuf = ra?.meminfo?.[SK_MEMINFO_SNDBUF] ?? 0;
    if ((ra?.wqueue ?? 0) < 100 || sndbuf <= 0) {
      throw new Error(`sock_diag reports send-buffer use ${ra?.wqueue} of ${sndbuf} (expected at least 100 of a positive size)`);
    }
  } finally {
    close(a);
    close(b);
  }
}
