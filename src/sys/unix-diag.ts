// Pure: the netlink messages of the kernel's sock_diag interface for unix sockets (linux/netlink.h,
// linux/sock_diag.h, linux/unix_diag.h). One request asks about one socket by inode; the reply is a
// unix_diag_msg followed by attributes. Host byte order throughout, as netlink is.

export const NETLINK_SOCK_DIAG = 4;
export const SOCK_DIAG_BY_FAMILY = 20;
const NLMSG_ERROR = 2;
const NLM_F_REQUEST = 1;
const AF_UNIX = 1;

export const UDIAG_SHOW_NAME = 0x01;
export const UDIAG_SHOW_VFS = 0x02;
export const UDIAG_SHOW_PEER = 0x04;
export const UDIAG_SHOW_RQLEN = 0x10;
export const UDIAG_SHOW_MEMINFO = 0x20;

const UNIX_DIAG_NAME = 0;
const UNIX_DIAG_VFS = 1;
const UNIX_DIAG_PEER = 2;
const UNIX_DIAG_RQLEN = 4;
const UNIX_DIAG_MEMINFO = 5;
/** Indexes into the MEMINFO array (enum SK_MEMINFO_*). */
export const SK_MEMINFO_WMEM_ALLOC = 2;
export const SK_MEMINFO_SNDBUF = 3;

const NLMSG_HDR = 16;
const REQ_LEN = NLMSG_HDR + 24; // + struct unix_diag_req
const MSG_LEN = NLMSG_HDR + 16; // + struct unix_diag_msg
const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export interface UnixDiagInfo {
  inode: number;
  /** SOCK_STREAM 1, SOCK_DGRAM 2, SOCK_SEQPACKET 5. */
  type: number;
  /** TCP_ESTABLISHED 1, TCP_LISTEN 10, TCP_CLOSE 7. */
  state: number;
  /** The bound path (for an accepted socket: its listener's); "@…" for abstract names. */
  name?: string;
  /** The inode of the bound path's file (an accepted socket shares its listener's). */
  vfs?: { inode: number; dev: number };
  /** The connected peer's socket inode. */
  peer?: number;
  /** Connected sockets: bytes waiting to be read, and the send-buffer memory in use (skb truesize). */
  rqueue?: number;
  wqueue?: number;
  /** sk_meminfo: u32 values indexed by SK_MEMINFO_*. */
  meminfo?: number[];
}

export type UnixDiagReply =
  | { seq: number; kind: "info"; info: UnixDiagInfo }
  | { seq: number; kind: "error"; errno: number }
  | { seq: number; kind: "other"; type: number };

/** SOCK_DIAG_BY_FAMILY for the unix socket with this inode, any state, the cookie not checked. */
export function encodeUnixDiagRequest(inode: number, show: number, seq: number): Uint8Array {
  const buf = new Uint8Array(REQ_LEN);
  const v = new DataView(buf.buffer);
  v.setUint32(0, REQ_LEN, LE);
  v.setUint16(4, SOCK_DIAG_BY_FAMILY, LE);
  v.setUint16(6, NLM_F_REQUEST, LE);
  v.setUint32(8, seq >>> 0, LE);
  v.setUint32(12, 0, LE); // the kernel's port
  buf[16] = AF_UNIX; // sdiag_family; sdiag_protocol and pad stay 0
  v.setUint32(20, 0xffffffff, LE); // udiag_states: all
  v.setUint32(24, inode >>> 0, LE);
  v.setUint32(28, show >>> 0, LE);
  v.setUint32(32, 0xffffffff, LE); // udiag_cookie {~0, ~0}: INET_DIAG_NOCOOKIE
  v.setUint32(36, 0xffffffff, LE);
  return buf;
}

/** The first netlink message in `bytes`; throws on a truncated or malformed one. */
export function decodeUnixDiagReply(bytes: Uint8Array): UnixDiagReply {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < NLMSG_HDR) throw new Error(`sock_diag: short reply (${bytes.length} bytes)`);
  const len = v.getUint32(0, LE);
  const type = v.getUint16(4, LE);
  const seq = v.getUint32(8, LE);
  if (len < NLMSG_HDR || len > bytes.length) throw new Error(`sock_diag: message length ${len} does not fit ${bytes.length} bytes`);
  if (type === NLMSG_ERROR) {
    if (len < NLMSG_HDR + 4) throw new Error("sock_diag: short error message");
    return { seq, kind: "error", errno: 0 - v.getInt32(NLMSG_HDR, LE) };
  }
  if (type !== SOCK_DIAG_BY_FAMILY) return { seq, kind: "other", type };
  if (len < MSG_LEN) throw new Error("sock_diag: short unix_diag_msg");
  const info: UnixDiagInfo = { type: bytes[NLMSG_HDR + 1]!, state: bytes[NLMSG_HDR + 2]!, inode: v.getUint32(NLMSG_HDR + 4, LE) };
  for (let at = MSG_LEN; at + 4 <= len; ) {
    const alen = v.getUint16(at, LE);
    // Attribute types may carry the nested and byte-order flags in their top bits.
    const atype = v.getUint16(at + 2, LE) & 0x3fff;
    if (alen < 4 || at + alen > len) throw new Error(`sock_diag: attribute of length ${alen} at ${at} overruns ${len}`);
    const p = at + 4;
    const plen = alen - 4;
    if (atype === UNIX_DIAG_NAME) info.name = decodeName(bytes.subarray(p, p + plen));
    else if (atype === UNIX_DIAG_VFS && plen >= 8) info.vfs = { inode: v.getUint32(p, LE), dev: v.getUint32(p + 4, LE) };
    else if (atype === UNIX_DIAG_PEER && plen >= 4) info.peer = v.getUint32(p, LE);
    else if (atype === UNIX_DIAG_RQLEN && plen >= 8) {
      info.rqueue = v.getUint32(p, LE);
      info.wqueue = v.getUint32(p + 4, LE);
    } else if (atype === UNIX_DIAG_MEMINFO) info.meminfo = Array.from({ length: plen >>> 2 }, (_, i) => v.getUint32(p + 4 * i, LE));
    at += (alen + 3) & ~3;
  }
  return { seq, kind: "info", info };
}

function decodeName(b: Uint8Array): string {
  if (b.length > 0 && b[0] === 0) return `@${new TextDecoder().decode(b.subarray(1))}`;
  const nul = b.indexOf(0);
  return new TextDecoder().decode(nul >= 0 ? b.subarray(0, nul) : b);
}
