import { describe, expect, test } from "bun:test";
import { WireError, WireReader, concat, encodeString, encodeStrings, encodeU64 } from "../../src/nix/wire.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("encoding", () => {
  test.each([
    [0, "0000000000000000"],
    [1, "0100000000000000"],
    [0x6e697863, "6378696e00000000"],
  ])("u64 %p", (n, h) => expect(hex(encodeU64(n))).toBe(h));
  test.each([
    ["", "0000000000000000"],
    ["try", "0300000000000000" + "747279" + "0000000000"],
    ["12345678", "0800000000000000" + "3132333435363738"],
  ])("string %p is padded to 8 bytes", (s, h) => expect(hex(encodeString(s))).toBe(h));
  test("string list", () => expect(hex(encodeStrings(["a"]))).toBe("0100000000000000" + "0100000000000000" + "6100000000000000"));
});

describe("reading", () => {
  test("round trip", async () => {
    const r = WireReader.fromBytes(concat([encodeU64(7), encodeString("hello"), encodeStrings(["x", "yz"])]));
    expect(await r.u64("n")).toBe(7);
    expect(await r.string("s")).toBe("hello");
    expect(await r.strings("l")).toEqual(["x", "yz"]);
    expect(await r.atEnd()).toBe(true);
  });
  test("reads across chunk boundaries", async () => {
    const bytes = concat([encodeString("split me"), encodeU64(3)]);
    const chunks = [...bytes].map((b) => Uint8Array.of(b));
    const r = new WireReader((async function* () { yield* chunks; })());
    expect(await r.string("s")).toBe("split me");
    expect(await r.u64("n")).toBe(3);
  });
  const bad: [string, Uint8Array, RegExp][] = [
    ["non-zero padding", Uint8Array.from([1, 0, 0, 0, 0, 0, 0, 0, 0x61, 1, 0, 0, 0, 0, 0, 0]), /non-zero padding/],
    ["absurd length", encodeU64(1e12), /exceeds the limit/],
    ["truncated string", Uint8Array.from([5, 0, 0, 0, 0, 0, 0, 0, 0x61]), /end of stream while reading drvPath/],
    ["truncated u64", Uint8Array.from([1, 2, 3]), /got 3 of 8 bytes/],
  ];
  test.each(bad)("rejects %s", async (_name, bytes, msg) => {
    const r = WireReader.fromBytes(bytes);
    await expect(r.string("drvPath")).rejects.toThrow(msg);
    await expect(WireReader.fromBytes(bytes).string("x")).rejects.toBeInstanceOf(WireError);
  });
  test("rejects a u64 beyond 2^53", async () => {
    await expect(WireReader.fromBytes(Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0x80])).u64("n")).rejects.toThrow(/too large/);
  });
});

describe("streaming reads", () => {
  test("stream() yields exactly n bytes in source-sized pieces and leaves the rest", async () => {
    const chunks = [Uint8Array.from([1, 2, 3]), Uint8Array.from([4, 5, 6, 7]), Uint8Array.from([8, 9])];
    const r = new WireReader((async function* () { yield* chunks; })());
    const parts: number[][] = [];
    for await (const p of r.stream(6, "payload")) parts.push([...p]);
    expect(parts).toEqual([[1, 2, 3], [4, 5, 6]]);
    expect([...(await r.bytes(3, "rest"))]).toEqual([7, 8, 9]);
    expect(r.consumed).toBe(9);
  });
  test("stream() names what was cut short", async () => {
    const r = WireReader.fromBytes(Uint8Array.from([1, 2]));
    const drain = async () => { for await (const _ of r.stream(5, "NAR contents")) { /* consume */ } };
    await expect(drain()).rejects.toThrow(/NAR contents \(got 2 of 5 bytes\)/);
  });
});
