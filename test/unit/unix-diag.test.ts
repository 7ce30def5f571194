// The sock_diag messages for unix sockets: the request's bytes, and replies (info with each
// attribute, errors, other message types, malformed input) decoded from hand-made bytes.
import { describe, expect, test } from "bun:test";
import { decodeUnixDiagReply, encodeUnixDiagRequest, UDIAG_SHOW_MEMINFO, UDIAG_SHOW_PEER, UDIAG_SHOW_RQLEN } from "../../src/sys/unix-diag.ts";

const u16 = (n: number) => [n & 0xff, (n >> 8) & 0xff];
const u32 = (n: number) => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
const pad4 = (b: number[]) => [...b, ...Array((4 - (b.length % 4)) % 4).fill(0)];
const attr = (type: number, payload: number[]) => pad4([...u16(4 + payload.length), ...u16(type), ...payload]);
/** nlmsghdr + body; `len` overrides the header's length field. */
const msg = (type: number, seq: number, body: number[], len = 16 + body.length) => new Uint8Array([...u32(len), ...u16(type), ...u16(0), ...u32(seq), ...u32(0), ...body]);
/** unix_diag_msg: family AF_UNIX, type, state, pad, inode, cookie. */
const diagMsg = (ino: number, type = 1, state = 1) => [1, type, state, 0, ...u32(ino), ...u32(7), ...u32(8)];

test("the request: 40 bytes, SOCK_DIAG_BY_FAMILY, AF_UNIX, all states, the inode, the flags, no cookie", () => {
  const req = encodeUnixDiagRequest(0x01020304, UDIAG_SHOW_RQLEN | UDIAG_SHOW_PEER, 9);
  expect([...req]).toEqual([
    ...u32(40), ...u16(20), ...u16(1), ...u32(9), ...u32(0),
    1, 0, 0, 0, ...u32(0xffffffff), ...u32(0x01020304), ...u32(0x14), ...u32(0xffffffff), ...u32(0xffffffff),
  ]);
});

test("an inode above 2^31 stays unsigned both ways", () => {
  const req = encodeUnixDiagRequest(4000000000, UDIAG_SHOW_MEMINFO, 1);
  expect(new DataView(req.buffer).getUint32(24, true)).toBe(4000000000);
  const r = decodeUnixDiagReply(msg(20, 1, diagMsg(4000000000)));
  expect(r).toEqual({ seq: 1, kind: "info", info: { inode: 4000000000, type: 1, state: 1 } });
});

describe("replies", () => {
  test.each([
    ["RQLEN", attr(4, [...u32(150), ...u32(213000)]), { rqueue: 150, wqueue: 213000 }],
    ["PEER", attr(2, u32(777)), { peer: 777 }],
    ["VFS", attr(1, [...u32(4242), ...u32(0x803)]), { vfs: { inode: 4242, dev: 0x803 } }],
    ["MEMINFO", attr(5, [0, 1, 2, 3, 4, 5, 6, 7, 8].flatMap((i) => u32(i * 1000))), { meminfo: [0, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000] }],
    ["NAME, a path (padded to 4)", attr(0, [...Buffer.from("/nix/var/nix/daemon-socket/socket")]), { name: "/nix/var/nix/daemon-socket/socket" }],
    ["NAME, abstract", attr(0, [0, ...Buffer.from("x")]), { name: "@x" }],
    ["an unknown attribute is skipped", [...attr(99, [1, 2, 3]), ...attr(2, u32(5))], { peer: 5 }],
    ["type flags in the attribute's top bits are ignored", attr(0x8000 | 2, u32(6)), { peer: 6 }],
    ["several attributes", [...attr(2, u32(9)), ...attr(4, [...u32(1), ...u32(2)])], { peer: 9, rqueue: 1, wqueue: 2 }],
  ])("%s", (_name, attrs, expected) => {
    const r = decodeUnixDiagReply(msg(20, 3, [...diagMsg(55), ...attrs]));
    expect(r).toEqual({ seq: 3, kind: "info", info: { inode: 55, type: 1, state: 1, ...expected } });
  });

  test("a second message after the first is ignored", () => {
    const first = msg(20, 4, [...diagMsg(1), ...attr(2, u32(2))]);
    const both = new Uint8Array([...first, ...msg(2, 5, u32(-2 >>> 0))]);
    expect(decodeUnixDiagReply(both)).toEqual({ seq: 4, kind: "info", info: { inode: 1, type: 1, state: 1, peer: 2 } });
  });

  test.each([
    ["ENOENT", -2, 2],
    ["EPERM", -1, 1],
    ["an ACK", 0, 0],
  ])("NLMSG_ERROR %s", (_name, err, errno) => {
    expect(decodeUnixDiagReply(msg(2, 8, [...u32(err >>> 0), ...Array(16).fill(0)]))).toEqual({ seq: 8, kind: "error", errno });
  });

  test("another message type is reported as such", () => expect(decodeUnixDiagReply(msg(3, 1, u32(0)))).toEqual({ seq: 1, kind: "other", type: 3 }));

  test.each([
    ["shorter than a header", new Uint8Array(10)],
    ["a length beyond the bytes", msg(20, 1, diagMsg(1), 200)],
    ["a length below a header", msg(20, 1, diagMsg(1), 8)],
    ["a diag message cut short", msg(20, 1, diagMsg(1).slice(0, 8))],
    ["an attribute overrunning the message", msg(20, 1, [...diagMsg(1), ...u16(40), ...u16(2), ...u32(1)])],
    ["an attribute shorter than its header", msg(20, 1, [...diagMsg(1), ...u16(2), ...u16(2), ...u32(1)])],
    ["an error cut short", msg(2, 1, [1, 2])],
  ])("malformed: %s", (_name, bytes) => expect(() => decodeUnixDiagReply(bytes)).toThrow(/sock_diag/));
});
