// parseTry reads a `try` that has fully arrived in one go (the hook's first answer waits for it);
// what it cannot vouch for goes to the field-by-field reader, so readTry gives the same request and
// the same errors whichever path it takes, however the bytes are split into chunks.
import { describe, expect, test } from "bun:test";
import { encodeTry, parseTry, readTry, type TryRequest } from "../../src/nix/hook-protocol.ts";
import { WireReader, concat, encodeString, encodeU64 } from "../../src/nix/wire.ts";

const req: TryRequest = {
  amWilling: true,
  system: "x86_64-linux",
  drvPath: "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-ünï.drv",
  requiredFeatures: ["nsh", "big-parallel"],
};
const bytes = encodeTry(req);

function chunked(b: Uint8Array, size: number): WireReader {
  let at = 0;
  return new WireReader({ read: async () => (at >= b.length ? { done: true } : { done: false, value: b.slice(at, (at += size)) }) });
}

/** readTry's outcome: the request, or the error message. */
const outcome = (r: WireReader) => readTry(r).then((x) => x, (e: Error) => `error: ${e.message}`);

describe("parseTry", () => {
  test.each([
    ["a whole try", bytes, { req, length: bytes.length }],
    ["a try and what follows it", concat([bytes, encodeString("try")]), { req, length: bytes.length }],
    ["no features, not willing", encodeTry({ ...req, amWilling: false, requiredFeatures: [] }), {
      req: { ...req, amWilling: false, requiredFeatures: [] },
      length: encodeTry({ ...req, requiredFeatures: [] }).length,
    }],
    ["nothing yet", new Uint8Array(0), "incomplete"],
    ["half of it", bytes.subarray(0, 37), "incomplete"],
    ["another request word", concat([encodeString("build"), bytes.subarray(16)]), "irregular"],
    ["a request word over 64 bytes", encodeString("t".repeat(65)), "irregular"],
    ["non-zero padding", (() => { const b = bytes.slice(); b[8 + 3] = 1; return b; })(), "irregular"],
    ["a length beyond 32 bits", concat([encodeU64(2 ** 40), new Uint8Array(16)]), "irregular"],
  ])("%s", (_name, input, want) => {
    expect(parseTry(input)).toEqual(want as ReturnType<typeof parseTry>);
  });
});

describe("readTry gives the same whichever path", () => {
  test.each([1, 3, 8, 100, 100_000])("chunks of %d bytes", async (size) => {
    const r = chunked(concat([bytes, bytes]), size);
    expect(await readTry(r)).toEqual(req);
    expect(await readTry(r)).toEqual(req);
    expect(await readTry(r)).toBeUndefined();
  });
  test.each([
    ["another request word", concat([encodeString("build"), bytes.subarray(16)]), /unexpected request 'build'/],
    ["non-zero padding", (() => { const b = bytes.slice(); b[8 + 3] = 1; return b; })(), /non-zero padding/],
    ["cut short", bytes.subarray(0, 37), /end of stream/],
  ])("%s: the field reader's error", async (_name, input, error) => {
    for (const size of [1, 8, 100_000]) expect(await outcome(chunked(input, size))).toMatch(error);
  });
});
