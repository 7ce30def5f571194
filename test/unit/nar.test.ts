import { describe, expect, test } from "bun:test";
import { nix32Encode, parseNarHash, toBase16 } from "../../src/nix/hash.ts";
import { NarError, readNar, readNarBytes } from "../../src/nix/nar.ts";
import { WireReader, concat, encodeString, encodeU64 } from "../../src/nix/wire.ts";

// `nix-store --dump` (Nix 2.8) of a tree with a directory, nested directories, an empty
// directory, plain/executable/empty/8-byte files, two symlinks and non-ASCII names whose UTF-8
// byte order differs from JavaScript's UTF-16 order (U+FF61 sorts before U+1F600 by bytes).
// `nix-hash --type sha256 --base32` of the tree: 02y100kv2npkg5hjlhi37g59010a3y25k2hrf3q4b2ni3vgw04j6
const TREE_NAR_B64 =
  "DQAAAAAAAABuaXgtYXJjaGl2ZS0xAAAAAQAAAAAAAAAoAAAAAAAAAAQAAAAAAAAAdHlwZQAAAAAJAAAAAAAAAGRpcmVjdG9yeQAA" +
  "AAAAAAAFAAAAAAAAAGVudHJ5AAAAAQAAAAAAAAAoAAAAAAAAAAQAAAAAAAAAbmFtZQAAAAABAAAAAAAAAEIAAAAAAAAABAAAAAAA" +
  "AABub2RlAAAAAAEAAAAAAAAAKAAAAAAAAAAEAAAAAAAAAHR5cGUAAAAABwAAAAAAAAByZWd1bGFyAAgAAAAAAAAAY29udGVudHMB" +
  "AAAAAAAAAEIAAAAAAAAAAQAAAAAAAAApAAAAAAAAAAEAAAAAAAAAKQAAAAAAAAAFAAAAAAAAAGVudHJ5AAAAAQAAAAAAAAAoAAAA" +
  "AAAAAAQAAAAAAAAAbmFtZQAAAAAFAAAAAAAAAGEudHh0AAAABAAAAAAAAABub2RlAAAAAAEAAAAAAAAAKAAAAAAAAAAEAAAAAAAA" +
  "AHR5cGUAAAAABwAAAAAAAAByZWd1bGFyAAgAAAAAAAAAY29udGVudHMGAAAAAAAAAGhlbGxvCgAAAQAAAAAAAAApAAAAAAAAAAEA" +
  "AAAAAAAAKQAAAAAAAAAFAAAAAAAAAGVudHJ5AAAAAQAAAAAAAAAoAAAAAAAAAAQAAAAAAAAAbmFtZQAAAAAFAAAAAAAAAGVpZ2h0" +
  "AAAABAAAAAAAAABub2RlAAAAAAEAAAAAAAAAKAAAAAAAAAAEAAAAAAAAAHR5cGUAAAAABwAAAAAAAAByZWd1bGFyAAgAAAAAAAAA" +
  "Y29udGVudHMIAAAAAAAAADEyMzQ1Njc4AQAAAAAAAAApAAAAAAAAAAEAAAAAAAAAKQAAAAAAAAAFAAAAAAAAAGVudHJ5AAAAAQAA" +
  "AAAAAAAoAAAAAAAAAAQAAAAAAAAAbmFtZQAAAAAFAAAAAAAAAGVtcHR5AAAABAAAAAAAAABub2RlAAAAAAEAAAAAAAAAKAAAAAAA" +
  "AAAEAAAAAAAAAHR5cGUAAAAACQAAAAAAAABkaXJlY3RvcnkAAAAAAAAAAQAAAAAAAAApAAAAAAAAAAEAAAAAAAAAKQAAAAAAAAAF" +
  "AAAAAAAAAGVudHJ5AAAAAQAAAAAAAAAoAAAAAAAAAAQAAAAAAAAAbmFtZQAAAAAJAAAAAAAAAGVtcHR5LnR4dAAAAAAAAAAEAAAA" +
  "AAAAAG5vZGUAAAAAAQAAAAAAAAAoAAAAAAAAAAQAAAAAAAAAdHlwZQAAAAAHAAAAAAAAAHJlZ3VsYXIACAAAAAAAAABjb250ZW50" +
  "cwAAAAAAAAAAAQAAAAAAAAApAAAAAAAAAAEAAAAAAAAAKQAAAAAAAAAFAAAAAAAAAGVudHJ5AAAAAQAAAAAAAAAoAAAAAAAAAAQA" +
  "AAAAAAAAbmFtZQAAAAAEAAAAAAAAAGxpbmsAAAAABAAAAAAAAABub2RlAAAAAAEAAAAAAAAAKAAAAAAAAAAEAAAAAAAAAHR5cGUA" +
  "AAAABwAAAAAAAABzeW1saW5rAAYAAAAAAAAAdGFyZ2V0AAAFAAAAAAAAAGEudHh0AAAAAQAAAAAAAAApAAAAAAAAAAEAAAAAAAAA" +
  "KQAAAAAAAAAFAAAAAAAAAGVudHJ5AAAAAQAAAAAAAAAoAAAAAAAAAAQAAAAAAAAAbmFtZQAAAAAGAAAAAAAAAHJ1bi5zaAAABAAA" +
  "AAAAAABub2RlAAAAAAEAAAAAAAAAKAAAAAAAAAAEAAAAAAAAAHR5cGUAAAAABwAAAAAAAAByZWd1bGFyAAoAAAAAAAAAZXhlY3V0" +
  "YWJsZQAAAAAAAAAAAAAAAAAACAAAAAAAAABjb250ZW50cxIAAAAAAAAAIyEvYmluL3NoCmVjaG8gaGkKAAAAAAAAAQAAAAAAAAAp" +
  "AAAAAAAAAAEAAAAAAAAAKQAAAAAAAAAFAAAAAAAAAGVudHJ5AAAAAQAAAAAAAAAoAAAAAAAAAAQAAAAAAAAAbmFtZQAAAAADAAAA" +
  "AAAAAHN1YgAAAAAABAAAAAAAAABub2RlAAAAAAEAAAAAAAAAKAAAAAAAAAAEAAAAAAAAAHR5cGUAAAAACQAAAAAAAABkaXJlY3Rv" +
  "cnkAAAAAAAAABQAAAAAAAABlbnRyeQAAAAEAAAAAAAAAKAAAAAAAAAAEAAAAAAAAAG5hbWUAAAAABgAAAAAAAABkZWVwZXIAAAQA" +
  "AAAAAAAAbm9kZQAAAAABAAAAAAAAACgAAAAAAAAABAAAAAAAAAB0eXBlAAAAAAkAAAAAAAAAZGlyZWN0b3J5AAAAAAAAAAUAAAAA" +
  "AAAAZW50cnkAAAABAAAAAAAAACgAAAAAAAAABAAAAAAAAABuYW1lAAAAAAEAAAAAAAAAeAAAAAAAAAAEAAAAAAAAAG5vZGUAAAAA" +
  "AQAAAAAAAAAoAAAAAAAAAAQAAAAAAAAAdHlwZQAAAAAHAAAAAAAAAHJlZ3VsYXIACAAAAAAAAABjb250ZW50cwEAAAAAAAAAeAAA" +
  "AAAAAAABAAAAAAAAACkAAAAAAAAAAQAAAAAAAAApAAAAAAAAAAEAAAAAAAAAKQAAAAAAAAABAAAAAAAAACkAAAAAAAAABQAAAAAA" +
  "AABlbnRyeQAAAAEAAAAAAAAAKAAAAAAAAAAEAAAAAAAAAG5hbWUAAAAAAgAAAAAAAAB1cAAAAAAAAAQAAAAAAAAAbm9kZQAAAAAB" +
  "AAAAAAAAACgAAAAAAAAABAAAAAAAAAB0eXBlAAAAAAcAAAAAAAAAc3ltbGluawAGAAAAAAAAAHRhcmdldAAACAAAAAAAAAAuLi9h" +
  "LnR4dAEAAAAAAAAAKQAAAAAAAAABAAAAAAAAACkAAAAAAAAAAQAAAAAAAAApAAAAAAAAAAEAAAAAAAAAKQAAAAAAAAAFAAAAAAAA" +
  "AGVudHJ5AAAAAQAAAAAAAAAoAAAAAAAAAAQAAAAAAAAAbmFtZQAAAAADAAAAAAAAAO+9oQAAAAAABAAAAAAAAABub2RlAAAAAAEA" +
  "AAAAAAAAKAAAAAAAAAAEAAAAAAAAAHR5cGUAAAAABwAAAAAAAAByZWd1bGFyAAgAAAAAAAAAY29udGVudHMBAAAAAAAAAHMAAAAA" +
  "AAAAAQAAAAAAAAApAAAAAAAAAAEAAAAAAAAAKQAAAAAAAAAFAAAAAAAAAGVudHJ5AAAAAQAAAAAAAAAoAAAAAAAAAAQAAAAAAAAA" +
  "bmFtZQAAAAAEAAAAAAAAAPCfmIAAAAAABAAAAAAAAABub2RlAAAAAAEAAAAAAAAAKAAAAAAAAAAEAAAAAAAAAHR5cGUAAAAABwAA" +
  "AAAAAAByZWd1bGFyAAgAAAAAAAAAY29udGVudHMBAAAAAAAAAGUAAAAAAAAAAQAAAAAAAAApAAAAAAAAAAEAAAAAAAAAKQAAAAAA" +
  "AAABAAAAAAAAACkAAAAAAAAA";
const TREE_HASH = "02y100kv2npkg5hjlhi37g59010a3y25k2hrf3q4b2ni3vgw04j6";
const TREE_SIZE = 2568;
// `nix-store --dump` of the executable run.sh and of the symlink "link" -> "a.txt".
const EXEC_NAR_B64 =
  "DQAAAAAAAABuaXgtYXJjaGl2ZS0xAAAAAQAAAAAAAAAoAAAAAAAAAAQAAAAAAAAAdHlwZQAAAAAHAAAAAAAAAHJlZ3VsYXIACgAAAAAAAABleGVjdXRhYmxlAAAAAAAAAAAAAAAAAAAIAAAAAAAAAGNvbnRlbnRzEgAAAAAAAAAjIS9iaW4vc2gKZWNobyBoaQoAAAAAAAABAAAAAAAAACkAAAAAAAAA";
const EXEC_SHA256 = "5e0accf02cedede5e4119ffa15e79e79a5fb1fb9bc43c3d434f33227a14477a0";
const LINK_NAR_B64 =
  "DQAAAAAAAABuaXgtYXJjaGl2ZS0xAAAAAQAAAAAAAAAoAAAAAAAAAAQAAAAAAAAAdHlwZQAAAAAHAAAAAAAAAHN5bWxpbmsABgAAAAAAAAB0YXJnZXQAAAUAAAAAAAAAYS50eHQAAAABAAAAAAAAACkAAAAAAAAA";
const LINK_SHA256 = "8d3c00cfa866e4d1b809772afeac240786246221eb2c574d69c4bba168834e81";

const b64 = (s: string) => new Uint8Array(Buffer.from(s, "base64"));
const TREE = b64(TREE_NAR_B64);

/** A source that delivers `bytes` in pieces of `size` bytes. */
function chunked(bytes: Uint8Array, size: number): WireReader {
  return new WireReader(
    (async function* () {
      for (let i = 0; i < bytes.length; i += size) yield bytes.slice(i, i + size);
    })(),
  );
}

/** Builds a NAR (possibly malformed) from its string tokens; Uint8Array tokens are raw bytes. */
const nar = (...tokens: (string | Uint8Array)[]) => concat(tokens.map((t) => encodeString(t)));
const file = (name: string, contents = "x") => ["entry", "(", "name", name, "node", "(", "type", "regular", "contents", contents, ")", ")"];
const dirNar = (...entries: string[][]) => nar("nix-archive-1", "(", "type", "directory", ...entries.flat(), ")");

describe("real NARs from nix-store --dump", () => {
  test("tree: hash, size and entries", async () => {
    const res = await readNarBytes(TREE);
    expect(res.narSize).toBe(TREE_SIZE);
    expect(nix32Encode(res.narHash)).toBe(TREE_HASH);
    expect(res.entries).toEqual([
      { type: "directory", path: "" },
      { type: "regular", path: "B", executable: false, size: 1 },
      { type: "regular", path: "a.txt", executable: false, size: 6 },
      { type: "regular", path: "eight", executable: false, size: 8 },
      { type: "directory", path: "empty" },
      { type: "regular", path: "empty.txt", executable: false, size: 0 },
      { type: "symlink", path: "link", target: "a.txt" },
      { type: "regular", path: "run.sh", executable: true, size: 18 },
      { type: "directory", path: "sub" },
      { type: "directory", path: "sub/deeper" },
      { type: "regular", path: "sub/deeper/x", executable: false, size: 1 },
      { type: "symlink", path: "sub/up", target: "../a.txt" },
      { type: "regular", path: "\uff61", executable: false, size: 1 },
      { type: "regular", path: "\u{1F600}", executable: false, size: 1 },
    ]);
  });
  test.each([
    ["executable file", EXEC_NAR_B64, EXEC_SHA256],
    ["symlink", LINK_NAR_B64, LINK_SHA256],
  ])("%s", async (_n, data, sha) => {
    const bytes = b64(data);
    const res = await readNarBytes(bytes);
    expect(toBase16(res.narHash)).toBe(sha);
    expect(res.narSize).toBe(bytes.length);
  });
  test.each([1, 3, 8, 13, 4096])("sink gets every byte once, in order (source chunks of %d)", async (size) => {
    const parts: Uint8Array[] = [];
    const res = await readNar(chunked(TREE, size), async (c) => {
      await Bun.sleep(0);
      parts.push(c.slice());
    });
    expect(Buffer.from(concat(parts)).equals(Buffer.from(TREE))).toBe(true);
    expect(nix32Encode(res.narHash)).toBe(TREE_HASH);
  });
  test("stops exactly at the end of the NAR", async () => {
    const r = chunked(concat([TREE, encodeU64(42), encodeString("after")]), 100);
    await readNar(r, () => {});
    expect(await r.u64("next")).toBe(42);
    expect(await r.string("next")).toBe("after");
    expect(await r.atEnd()).toBe(true);
  });
  test("offsets are relative to the NAR start", async () => {
    const r = WireReader.fromBytes(concat([encodeU64(7), nar("nix-archive-1", "(", "type", "fifo")]));
    await r.u64("prefix");
    await expect(readNar(r, () => {})).rejects.toThrow("at NAR offset 56, got \"fifo\"");
  });
  test("large contents stream in source-sized chunks", async () => {
    const big = new Uint8Array(5 * 1024 * 1024 + 3).fill(7);
    const data = nar("nix-archive-1", "(", "type", "regular", "contents", big, ")");
    const sizes: number[] = [];
    const res = await readNar(chunked(data, 65536), (c) => void sizes.push(c.length));
    expect(res.narSize).toBe(data.length);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(65536);
    expect(toBase16(res.narHash)).toBe(new Bun.CryptoHasher("sha256").update(data).digest("hex"));
  });
});

describe("malformed NARs", () => {
  const cases: [string, Uint8Array, string | RegExp][] = [
    ["empty input", new Uint8Array(0), /truncated or invalid NAR: .*'nix-archive-1'/],
    ["wrong magic", nar("nix-archive-2"), "expected 'nix-archive-1' (not a NAR?) at NAR offset 0, got \"nix-archive-2\""],
    ["huge first string", encodeU64(1e9), "expected 'nix-archive-1' (not a NAR?) at NAR offset 0, got a string of 1000000000 bytes"],
    ["missing (", nar("nix-archive-1", "type"), "expected '(' to open the node for the root at NAR offset 24, got \"type\""],
    ["unknown type", nar("nix-archive-1", "(", "type", "fifo"), "expected 'regular' or 'symlink' or 'directory' for the root at NAR offset 56, got \"fifo\""],
    ["bad executable marker", nar("nix-archive-1", "(", "type", "regular", "executable", "yes"), "expected '' after 'executable' for the root at NAR offset 96, got \"yes\""],
    ["unsorted", dirNar(file("b"), file("a")), /entry name "a" at NAR offset \d+ in the root directory comes after "b": names must be sorted/],
    ["duplicate", dirNar(file("a"), file("a")), /duplicate entry name "a"/],
    ["empty name", dirNar(file("")), /entry name "" at NAR offset 128 in the root directory is empty/],
    ["dot", dirNar(file(".")), /is '\.'/],
    ["dotdot", dirNar(file("..")), /is '\.\.'/],
    ["slash", dirNar(file("a/b")), /contains '\/'/],
    ["NUL", dirNar(file("a\0b")), /contains a NUL byte/],
    ["long name", dirNar(file("n".repeat(256))), /entry name in the root directory at NAR offset 128 is 256 bytes long; the limit is 255/],
    ["empty symlink target", nar("nix-archive-1", "(", "type", "symlink", "target", ""), /symlink '' has an empty target/],
    ["missing entry close", nar("nix-archive-1", "(", "type", "directory", ...file("a").slice(0, -1), "entry"), /expected '\)' to close the directory entry at NAR offset \d+, got "entry"/],
    ["truncated contents", concat([nar("nix-archive-1", "(", "type", "regular", "contents"), encodeU64(100), new Uint8Array(10)]), /truncated or invalid NAR: .*contents of '' at NAR offset 88 \(got 10 of 100 bytes\)/],
    ["truncated at end", nar("nix-archive-1", "(", "type", "directory"), /truncated or invalid NAR: .*'entry' or '\)' in the root directory/],
    ["non-zero token padding", Uint8Array.from([...nar("nix-archive-1")].map((b, i) => (i === 23 ? 1 : b))), "non-zero padding after 'nix-archive-1' (not a NAR?) at NAR offset 21"],
    ["non-zero contents padding", concat([nar("nix-archive-1", "(", "type", "regular", "contents"), encodeU64(1), Uint8Array.of(1, 0, 0, 0, 0, 0, 9, 0)]), "non-zero padding after contents of '' at NAR offset 97"],
  ];
  test.each(cases)("%s", async (_n, bytes, err) => {
    const p = readNarBytes(bytes);
    await expect(p).rejects.toThrow(NarError);
    await expect(p).rejects.toThrow(err);
  });
  test("trailing data", async () => await expect(readNarBytes(concat([TREE, encodeU64(0)]))).rejects.toThrow(`trailing data after the NAR at offset ${TREE_SIZE}`));
  test("depth limit", async () => {
    const deep = (n: number): (string | Uint8Array)[] =>
      n === 0 ? ["(", "type", "directory", ")"] : ["(", "type", "directory", "entry", "(", "name", "d", "node", ...deep(n - 1), ")", ")"];
    await readNarBytes(nar("nix-archive-1", ...deep(3)), { maxDepth: 3 });
    await expect(readNarBytes(nar("nix-archive-1", ...deep(4)), { maxDepth: 3 })).rejects.toThrow("'d/d/d/d' at NAR offset");
    // The default limit copes with deep but legal nesting without recursion.
    const res = await readNarBytes(nar("nix-archive-1", ...deep(1000)));
    expect(res.entries.length).toBe(1001);
  });
  test("name length option", async () => {
    await expect(readNarBytes(dirNar(file("abcd")), { maxNameLength: 3 })).rejects.toThrow("is 4 bytes long; the limit is 3");
    expect((await readNarBytes(dirNar(file("abc")), { maxNameLength: 3 })).entries).toHaveLength(2);
  });
});

describe("against nix-store --dump", () => {
  const nixStore = Bun.which("nix-store");
  test.skipIf(nixStore === null)("a 20 MiB file streams through and hashes like nix-hash", async () => {
    const dir = `${process.env.TMPDIR ?? "/tmp"}/nar-test-${process.pid}`;
    await Bun.write(`${dir}/big`, new Uint8Array(20 * 1024 * 1024).map((_, i) => (i * 31) & 0xff));
    try {
      const proc = Bun.spawn(["nix-store", "--dump", dir], { stdout: "pipe", stderr: "pipe" });
      let maxChunk = 0;
      const res = await readNar(new WireReader(proc.stdout.getReader()), (c) => void (maxChunk = Math.max(maxChunk, c.length)));
      expect(await proc.exited).toBe(0);
      const expected = (await new Response(Bun.spawn(["nix-hash", "--type", "sha256", dir]).stdout).text()).trim();
      expect(toBase16(res.narHash)).toBe(expected);
      expect(toBase16(parseNarHash(`sha256:${expected}`))).toBe(expected);
      expect(maxChunk).toBeLessThan(4 * 1024 * 1024);
    } finally {
      await Bun.$`rm -rf ${dir}`.quiet();
    }
  });
});
