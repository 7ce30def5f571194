import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EXPORT_MAGIC, ExportError, type ExportedPath, exportEnd, exportHeader, exportTrailer, readExport } from "../../src/nix/export.ts";
import { formatNarHash, toBase16 } from "../../src/nix/hash.ts";
import { NarError } from "../../src/nix/nar.ts";
import { WireReader, concat, encodeString, encodeU64 } from "../../src/nix/wire.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
// `nix-store --dump` (Nix 2.8) of an executable script; sha256 from sha256sum.
const EXEC_NAR = new Uint8Array(
  Buffer.from(
    "DQAAAAAAAABuaXgtYXJjaGl2ZS0xAAAAAQAAAAAAAAAoAAAAAAAAAAQAAAAAAAAAdHlwZQAAAAAHAAAAAAAAAHJlZ3VsYXIACgAAAAAAAABleGVjdXRhYmxlAAAAAAAAAAAAAAAAAAAIAAAAAAAAAGNvbnRlbnRzEgAAAAAAAAAjIS9iaW4vc2gKZWNobyBoaQoAAAAAAAABAAAAAAAAACkAAAAAAAAA",
    "base64",
  ),
);
const EXEC_SHA256 = "5e0accf02cedede5e4119ffa15e79e79a5fb1fb9bc43c3d434f33227a14477a0";
const P1 = "/nix/store/7bmcvr1lfmmlvpvlalc0iqzkv1z1g5bq-a";
const P2 = "/nix/store/kc3z0n2p5wqd1m1f4dl5xsz2l6w9dd8g-b";

async function collect(bytes: Uint8Array): Promise<{ paths: ExportedPath[]; r: WireReader; count: number }> {
  const r = WireReader.fromBytes(bytes);
  const paths: ExportedPath[] = [];
  const count = await readExport(r, (p) => void paths.push(p));
  return { paths, r, count };
}

describe("encoding", () => {
  test.each([
    ["header", exportHeader(), "0100000000000000"],
    ["end", exportEnd(), "0000000000000000"],
    [
      "trailer without deriver",
      exportTrailer({ path: "/a", references: ["/b"] }),
      "4e49584500000000" + "0200000000000000" + "2f61000000000000" + "0100000000000000" + "0200000000000000" + "2f62000000000000" + "0000000000000000" + "0000000000000000",
    ],
    [
      "trailer with deriver",
      exportTrailer({ path: "/a", references: [], deriver: "/d" }),
      "4e49584500000000" + "0200000000000000" + "2f61000000000000" + "0000000000000000" + "0200000000000000" + "2f64000000000000" + "0000000000000000",
    ],
  ])("%s", (_n, bytes, h) => expect(hex(bytes)).toBe(h));
});

describe("readExport", () => {
  test("two paths, then stops at the end marker", async () => {
    const stream = concat([
      exportHeader(), EXEC_NAR, exportTrailer({ path: P1, references: [] }),
      exportHeader(), EXEC_NAR, exportTrailer({ path: P2, references: [P1, P2], deriver: "/nix/store/x-b.drv" }),
      exportEnd(), encodeU64(99),
    ]);
    const { paths, r, count } = await collect(stream);
    expect(count).toBe(2);
    expect(paths.map((p) => [p.path, p.references, p.deriver, p.narSize, toBase16(p.narHash)])).toEqual([
      [P1, [], undefined, EXEC_NAR.length, EXEC_SHA256],
      [P2, [P1, P2], "/nix/store/x-b.drv", EXEC_NAR.length, EXEC_SHA256],
    ]);
    expect(await r.u64("after")).toBe(99);
  });
  test("empty stream", async () => expect((await collect(exportEnd())).count).toBe(0));
  test("narSink receives the NAR bytes", async () => {
    const parts: Uint8Array[] = [];
    await readExport(WireReader.fromBytes(concat([exportHeader(), EXEC_NAR, exportTrailer({ path: P1, references: [] }), exportEnd()])), () => {}, {
      narSink: (i) => (c) => void parts.push(Uint8Array.of(i), c.slice()),
    });
    expect(hex(concat(parts.filter((_, i) => i % 2 === 1)))).toBe(hex(EXEC_NAR));
  });
  test("legacy signature is skipped", async () => {
    const trailer = concat([encodeU64(EXPORT_MAGIC), encodeString(P1), encodeU64(0), encodeString(""), encodeU64(1), encodeString("sig")]);
    const { paths } = await collect(concat([exportHeader(), EXEC_NAR, trailer, exportEnd()]));
    expect(paths[0]?.path).toBe(P1);
  });
  const good = exportTrailer({ path: P1, references: [] });
  test.each([
    ["bad item marker", concat([encodeU64(2)]), ExportError, "expected 0 or 1 at export offset 0, got 2"],
    ["bad magic", concat([exportHeader(), EXEC_NAR, encodeU64(0x1234), good.subarray(8)]), ExportError, `expected export magic 0x4558494e at export offset ${8 + EXEC_NAR.length}, got 0x1234`],
    ["bad signature marker", concat([exportHeader(), EXEC_NAR, good.subarray(0, good.length - 8), encodeU64(5)]), ExportError, `expected 0 or 1 as signature marker of ${P1}`],
    ["bad NAR", concat([exportHeader(), encodeString("nix-archive-2")]), NarError, "expected 'nix-archive-1'"],
    ["missing end", concat([exportHeader(), EXEC_NAR, good]), Error, "unexpected end of stream while reading export item marker at export offset"],
  ])("rejects %s", async (_n, bytes, cls, msg) => {
    const p = collect(bytes);
    await expect(p).rejects.toThrow(cls);
    await expect(p).rejects.toThrow(msg);
  });
});

// Real exports from Nix 2.8 in a temporary store, and our streams imported by it.
const haveNix = Bun.which("nix-store") !== null;
describe.skipIf(!haveNix)("against nix-store --export/--import", () => {
  let dir = "";
  let env: Record<string, string> = {};
  const nix = async (args: string[], stdin?: Uint8Array, store?: string): Promise<Uint8Array> => {
    const proc = Bun.spawn(["nix-store", ...(store ? ["--store", store] : []), ...args], { env, stdin: stdin ?? "ignore", stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([new Response(proc.stdout).bytes(), new Response(proc.stderr).text(), proc.exited]);
    if (code !== 0) throw new Error(`nix-store ${args.join(" ")} failed: ${err}`);
    return out;
  };
  const text = async (args: string[], store?: string) => new TextDecoder().decode(await nix(args, undefined, store)).trim();
  let closure: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "nsh-export-"));
    mkdirSync(join(dir, "conf"));
    writeFileSync(join(dir, "conf/nix.conf"), "build-users-group =\nsandbox = false\nsubstituters =\n");
    env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir, NIX_REMOTE: "local", NIX_STORE_DIR: join(dir, "s"), NIX_STATE_DIR: join(dir, "var"), NIX_LOG_DIR: join(dir, "log"), NIX_CONF_DIR: join(dir, "conf") };
    writeFileSync(join(dir, "src.txt"), "data\n");
    writeFileSync(join(dir, "d.nix"), 'builtins.derivation { name = "t"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo hello > $out; echo ${./src.txt}" ]; }');
    const inst = Bun.spawnSync(["nix-instantiate", join(dir, "d.nix")], { env, stderr: "pipe" });
    const drv = inst.stdout.toString().trim();
    const out = await text(["-r", drv]);
    closure = [...(await text(["-qR", drv])).split("\n"), out];
  });
  afterAll(() => {
    if (dir !== "") rmSync(dir, { recursive: true, force: true });
  });

  test("parses nix-store --export, matching the store's path infos", async () => {
    const { paths, count } = await collect(await nix(["--export", ...closure]));
    expect(count).toBe(3);
    for (const p of paths) {
      expect(formatNarHash(p.narHash)).toBe(await text(["-q", "--hash", p.path]));
      expect(String(p.narSize)).toBe(await text(["-q", "--size", p.path]));
      expect([...p.references].sort()).toEqual((await text(["-q", "--references", p.path])).split("\n").filter((s) => s !== "").sort());
      const deriver = await text(["-q", "--deriver", p.path]);
      expect(p.deriver ?? "unknown-deriver").toBe(deriver);
    }
  });

  test("nix-store --import accepts a stream built from our pieces", async () => {
    const parts: Uint8Array[] = [];
    for (const path of closure) {
      const refs = (await text(["-q", "--references", path])).split("\n").filter((s) => s !== "");
      const deriver = await text(["-q", "--deriver", path]);
      parts.push(exportHeader(), await nix(["--dump", path]), exportTrailer({ path, references: refs, ...(deriver === "unknown-deriver" ? {} : { deriver }) }));
    }
    parts.push(exportEnd());
    const other = join(dir, "other");
    const imported = new TextDecoder().decode(await nix(["--import"], concat(parts), other)).trim().split("\n");
    expect(imported).toEqual(closure);
    await nix(["--check-validity", ...closure], undefined, other);
    for (const path of closure) expect(await text(["-q", "--hash", path], other)).toBe(await text(["-q", "--hash", path]));
    expect(await text(["-q", "--deriver", closure[2]!], other)).toBe(closure[1]!);
  });
});
