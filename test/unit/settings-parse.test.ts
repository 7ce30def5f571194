// parseSettings reads a settings blob that has fully arrived in one go (the hook's start-up); what it
// cannot vouch for goes to the field-by-field reader, so readSettings gives the same settings and
// the same errors whichever path it takes, however the bytes are split into chunks.
import { describe, expect, test } from "bun:test";
import { encodeSettings, encodeTry, parseSettings, readSettings } from "../../src/nix/hook-protocol.ts";
import { DEFAULT_MAX_STRING, WireReader, concat, encodeString, encodeU64 } from "../../src/nix/wire.ts";

const settings = new Map([
  ["builders", ""],
  ["max-jobs", "1"],
  ["system-features", "benchmark big-parallel kvm nixos-test"],
  ["ünïcode", "välue"],
]);
const blob = encodeSettings(settings);
const tryBytes = encodeTry({ amWilling: true, system: "x86_64-linux", drvPath: "/nix/store/a-x.drv", requiredFeatures: [] });

/** A reader that hands out `bytes` in chunks of `size`. */
function chunked(bytes: Uint8Array, size: number): WireReader {
  let at = 0;
  return new WireReader({
    read: async () => (at >= bytes.length ? { done: true } : { done: false, value: bytes.slice(at, (at += size)) }),
  });
}

describe("parseSettings", () => {
  test.each([
    ["the whole blob", blob, { settings: [...settings], length: blob.length }],
    ["the blob and the first try after it", concat([blob, tryBytes]), { settings: [...settings], length: blob.length }],
    ["no settings", encodeU64(0), { settings: [], length: 8 }],
    ["nothing yet", new Uint8Array(0), "incomplete"],
    ["all but the end marker", blob.subarray(0, blob.length - 8), "incomplete"],
    ["half a value", blob.subarray(0, 40), "incomplete"],
    ["a marker other than 0 or 1", encodeU64(2), "irregular"],
    ["non-zero padding", concat([encodeU64(1), encodeString("a"), encodeU64(1), new Uint8Array([120, 1, 0, 0, 0, 0, 0, 0]), encodeU64(0)]), "irregular"],
    ["a string longer than the cap", concat([encodeU64(1), encodeU64(DEFAULT_MAX_STRING + 1)]), "irregular"],
    ["a length beyond 32 bits", concat([encodeU64(1), encodeU64(2 ** 40)]), "irregular"],
  ])("%s", (_what, bytes, want) => {
    const got = parseSettings(bytes);
    const seen: unknown = typeof got === "string" ? got : { settings: [...got.settings], length: got.length };
    expect(seen).toEqual(want);
  });
});

describe("readSettings", () => {
  test.each([1, 3, 8, 100, 100_000])("chunks of %d bytes: the settings, and the try after them is left to read", async (size) => {
    const r = chunked(concat([blob, tryBytes]), size);
    expect([...(await readSettings(r))]).toEqual([...settings]);
    expect(r.consumed).toBe(blob.length);
    expect(await r.string("request word")).toBe("try");
  });
  test.each([
    ["a bad marker", concat([blob.subarray(0, blob.length - 8), encodeU64(7)]), /bad settings record marker 7/],
    ["a string over the cap", concat([encodeU64(1), encodeU64(DEFAULT_MAX_STRING + 1)]), /exceeds the limit/],
    ["a blob cut short", blob.subarray(0, 40), /unexpected end of stream while reading length of setting name 1/],
  ])("%s: the field-by-field reader's error", async (_what, bytes, error) => {
    await expect(readSettings(chunked(bytes, 16))).rejects.toThrow(error);
  });
});

describe("parseSettings with bytes beyond ASCII", () => {
  // A value with non-ASCII bytes, then non-zero padding after it: refused exactly as with ASCII values.
  const value = "välue€"; // 9 bytes in UTF-8: 7 bytes of padding
  const good = encodeSettings(new Map([["k", value]]));
  test("the value comes back as it was", () => {
    expect(parseSettings(good)).toEqual({ settings: new Map([["k", value]]), length: good.length });
  });
  test("non-zero padding after it is irregular", () => {
    const bad = good.slice();
    bad[8 + 16 + 8 + 9 + 2] = 1; // marker, "k" (8 + 8), length of the value, the value's 9 bytes, into its padding
    expect(parseSettings(bad)).toBe("irregular");
  });
});

describe("parseSettings keeping one setting (the hook before its first answer)", () => {
  test.each([
    ["the whole blob", blob, { settings: [["builders", ""]], length: blob.length }],
    ["a setting that is not there", encodeSettings(new Map([["max-jobs", "1"]])), { settings: [], length: 48 }],
    [
      "non-zero padding after a setting it skips",
      concat([encodeU64(1), encodeString("a"), encodeU64(1), new Uint8Array([120, 1, 0, 0, 0, 0, 0, 0]), encodeU64(0)]),
      "irregular",
    ],
    ["all but the end marker", blob.subarray(0, blob.length - 8), "incomplete"],
  ])("%s", (_what, bytes, want) => {
    const got = parseSettings(bytes, "builders");
    const seen: unknown = typeof got === "string" ? got : { settings: [...got.settings], length: got.length };
    expect(seen).toEqual(want);
  });
  test("beyond ASCII, the names are compared decoded", () => {
    const bytes = encodeSettings(new Map([["ünïcode", "välue"], ["builders", "x"]]));
    const got = parseSettings(bytes, "ünïcode");
    expect(typeof got === "string" ? got : [...got.settings]).toEqual([["ünïcode", "välue"]]);
  });
  test("readSettings with irregular bytes still reads them all, field by field", async () => {
    const odd = concat([encodeU64(1), encodeString("builders"), encodeString(""), encodeU64(1), encodeU64(1 << 21)]);
    await expect(readSettings(WireReader.fromBytes(odd), "builders")).rejects.toThrow(/exceeds the limit/);
  });
});

test("parseSettings finds a non-zero byte anywhere in any padding (strings of 1 to 9 bytes)", () => {
  for (let len = 1; len <= 9; len++) {
    const good = encodeSettings(new Map([["n", "v".repeat(len)]]));
    expect(parseSettings(good)).not.toBeString();
    const valueEnd = 8 + 8 + 8 + 8 + len; // marker, name ("n" and its padding), value length, value
    for (let at = valueEnd; at < valueEnd + ((8 - (len % 8)) % 8); at++) {
      const bad = good.slice();
      bad[at] = 1;
      expect([len, at, parseSettings(bad)]).toEqual([len, at, "irregular"]);
      expect([len, at, parseSettings(bad, "n")]).toEqual([len, at, "irregular"]);
    }
  }
});
