import { describe, expect, test } from "bun:test";
import {
  HashError,
  formatNarHash,
  formatSri,
  fromBase16,
  nix32Decode,
  nix32Encode,
  nix32Length,
  parseNarHash,
  sha256,
  toBase16,
} from "../../src/nix/hash.ts";

// [input, base16, nix32, SRI]: produced with Nix 2.8's `nix-hash --to-base32` and `nix hash to-sri`.
const fixtures: [string, string, string, string][] = [
  ["", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73", "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="],
  ["abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s", "sha256-ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="],
  ["nix-archive-1", "858cbc65f2d1de379b2b5544baf27c411b650fa0768954be327236500fa74594", "1525lw7m0dkj6az592bnl07na6s1gkrbli2m5fdkgpniy9jvr345", "sha256-hYy8ZfLR3jebK1VEuvJ8QRtlD6B2iVS+MnI2UA+nRZQ="],
  ["The quick brown fox", "5cac4f980fedc3d3f1f99b4be3472c9b30d56523e632d151237ec9309048bda9", "1adx92831jby4d8x2cp64djxac4v5i3y6jwvz7qx7hzd1yc4zb2w", "sha256-XKxPmA/tw9Px+ZtL40csmzDVZSPmMtFRI37JMJBIvak="],
];

describe("nix32", () => {
  test.each(fixtures)("sha256(%p) encodes like Nix", (input, b16, n32) => {
    expect(toBase16(sha256(input))).toBe(b16);
    expect(nix32Encode(fromBase16(b16))).toBe(n32);
    expect(toBase16(nix32Decode(n32))).toBe(b16);
  });
  // Other sizes, also from `nix-hash --to-base32` (sha1 and md5 of "abc").
  test.each([
    ["a9993e364706816aba3e25717850c26c9cd0d89d", "kpcd173cq987hw957sx6m0868wv3x6d9"],
    ["900150983cd24fb0d6963f7d28e17f72", "3jgzhjhz9zjvbb0kyj7jc500ch"],
    ["00", "00"],
    ["ff", "7z"],
  ])("%s <-> %s", (b16, n32) => {
    expect(nix32Encode(fromBase16(b16))).toBe(n32);
    expect(toBase16(nix32Decode(n32, b16.length / 2))).toBe(b16);
  });
  test.each([
    [16, 26],
    [20, 32],
    [32, 52],
    [64, 103],
  ])("%d bytes need %d characters", (size, len) => expect(nix32Length(size)).toBe(len));
  test.each([
    ["e", "1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5e", /invalid nix32 character 'e' at position 51/],
    ["u", "u" + "0".repeat(51), /invalid nix32 character 'u' at position 0/],
    ["overflow", "2" + "0".repeat(51), /does not fit in 32 bytes/],
    ["odd length", "0".repeat(51), /matches no hash size/],
  ])("rejects %s", (_n, s, err) => expect(() => nix32Decode(s)).toThrow(err));
});

describe("parseNarHash", () => {
  const abc = fixtures[1]!;
  const b64 = "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=";
  test.each([
    ["sha256:nix32", `sha256:${abc[2]}`],
    ["sha256:base16", `sha256:${abc[1]}`],
    ["sha256:BASE16", `sha256:${abc[1].toUpperCase()}`],
    ["sha256:base64", `sha256:${b64}`],
    ["SRI", abc[3]],
    ["bare base16", abc[1]],
    ["bare nix32", abc[2]],
  ])("accepts %s", (_n, s) => expect(toBase16(parseNarHash(s))).toBe(abc[1]));

  test.each([
    ["wrong algorithm", `sha1:${abc[2]}`, /algorithm 'sha1'; a NAR hash must be sha256/],
    ["wrong SRI algorithm", "sha512-" + b64, /SRI hash .* algorithm 'sha512'/],
    ["short digest", "sha256:abc", /digest of length 3; SHA-256 needs 64 \(base16\), 52 \(nix32\) or 44 \(base64\)/],
    ["bad base16", "sha256:" + "g".repeat(64), /invalid base16/],
    ["bad nix32", "sha256:" + "e".repeat(52), /invalid nix32 character 'e'/],
    ["bad base64", "sha256-" + "!".repeat(44), /invalid base64/],
    ["short SRI", "sha256-AAAA", /length 4, expected 44 base64/],
    ["bare base64", b64, /no algorithm prefix/],
    ["empty", "", /no algorithm prefix/],
  ])("rejects %s", (_n, s, err) => {
    expect(() => parseNarHash(s)).toThrow(HashError);
    expect(() => parseNarHash(s)).toThrow(err);
  });
});

describe("formatting", () => {
  test.each(fixtures)("formatNarHash(sha256(%p))", (input, _b16, n32, sri) => {
    expect(formatNarHash(sha256(input))).toBe(`sha256:${n32}`);
    expect(formatSri(sha256(input))).toBe(sri);
  });
  test("wrong size", () => expect(() => formatNarHash(new Uint8Array(20))).toThrow(/32 bytes, got 20/));
});
