// Expected: the NAR nsh writes from the file system is byte for byte the one `nix-store --dump`
// writes (Nix's own serializer), for files, executables, symlinks, nested and empty directories,
// sizes on and off the 8-byte boundary, names that sort differently as bytes than as UTF-16, and
// non-UTF-8 names; a socket or FIFO inside is an error naming it.
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { dumpNar, narTokens } from "../../src/nix/nar-dump.ts";
import { readNar } from "../../src/nix/nar.ts";
import { WireReader, encodeString } from "../../src/nix/wire.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-nar-dump-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function ours(p: string): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  const { narSize } = await dumpNar(p, (c) => void chunks.push(Uint8Array.from(c)));
  const all = Buffer.concat(chunks);
  expect(narSize).toBe(all.length);
  return all;
}

function nixDump(p: string): Buffer {
  const r = Bun.spawnSync(["nix-store", "--dump", p], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`nix-store --dump ${p}: ${r.stderr.toString()}`);
  return Buffer.from(r.stdout);
}

test("token table", () => {
  expect(Buffer.from(narTokens.regular(true, 5))).toEqual(Buffer.concat([encodeString("type"), encodeString("regular"), encodeString("executable"), encodeString(""), encodeString("contents"), Buffer.from([5, 0, 0, 0, 0, 0, 0, 0])]));
  expect(narTokens.padding(8)).toHaveLength(0);
  expect(narTokens.padding(5)).toHaveLength(3);
  expect(narTokens.padding(0)).toHaveLength(0);
});

test("a tree of every kind of entry is dumped exactly as Nix dumps it", async () => {
  const root = path.join(tmp, "tree");
  fs.mkdirSync(path.join(root, "sub", "deeper"), { recursive: true });
  fs.mkdirSync(path.join(root, "empty-dir"));
  fs.writeFileSync(path.join(root, "empty"), "");
  fs.writeFileSync(path.join(root, "eight"), "12345678");
  fs.writeFileSync(path.join(root, "odd"), "hello world\n");
  fs.writeFileSync(path.join(root, "run"), "#!/bin/sh\n", { mode: 0o755 });
  fs.writeFileSync(path.join(root, "sub", "deeper", "big"), Buffer.alloc(700_000, 7));
  fs.symlinkSync("../odd", path.join(root, "sub", "link"));
  fs.symlinkSync("/nonexistent/target", path.join(root, "dangling"));
  // Byte order vs UTF-16 order: U+FF21 (EF BC A1) sorts before U+10000 (F0 90 80 80) in both, but
  // "Z" < "a" < "é" only in byte order.
  for (const n of ["a", "Z", "é", "\u{10000}", "\uFF21", "B-1", "B"]) fs.writeFileSync(path.join(root, "sub", n), n);
  fs.writeFileSync(Buffer.from([...Buffer.from(`${root}/sub/`), 0xff, 0x41]), "not utf-8");
  expect(await ours(root)).toEqual(nixDump(root));
});

test("a single file, an executable and a symlink as the root", async () => {
  const f = path.join(tmp, "single");
  fs.writeFileSync(f, "x".repeat(1000));
  expect(await ours(f)).toEqual(nixDump(f));
  const x = path.join(tmp, "single-x");
  fs.writeFileSync(x, "y", { mode: 0o700 });
  expect(await ours(x)).toEqual(nixDump(x));
  const l = path.join(tmp, "single-link");
  fs.symlinkSync("single", l);
  expect(await ours(l)).toEqual(nixDump(l));
});

test("our NAR reads back with our validating reader", async () => {
  const root = path.join(tmp, "tree");
  const bytes = await ours(root);
  const r = await readNar(WireReader.fromBytes(bytes), () => {});
  expect(r.narSize).toBe(bytes.length);
});

test("a FIFO inside is an error naming it", async () => {
  const root = path.join(tmp, "with-fifo");
  fs.mkdirSync(root);
  expect(Bun.spawnSync(["mkfifo", path.join(root, "pipe")]).exitCode).toBe(0);
  await expect(dumpNar(root, () => {})).rejects.toThrow(/with-fifo\/pipe: not a regular file, symlink or directory/);
});

test("which stores are read from disk", async () => {
  const { storeOnDisk } = await import("../../src/remote/local-nar.ts");
  const table: [string, boolean][] = [
    ["auto", true],
    ["daemon", true],
    ["local", true],
    ["unix:///run/nix/socket", true],
    ["local?root=/tmp/x", true],
    ["/tmp/chroot", true],
    ["ssh://host", false],
    ["ssh-ng://host", false],
    ["https://cache.nixos.org", false],
    ["s3://bucket", false],
    ["file:///tmp/binary-cache", false],
  ];
  for (const [store, want] of table) expect([store, storeOnDisk(store)]).toEqual([store, want]);
});
