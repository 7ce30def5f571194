// Expected: a memo remembers facts per key across processes (one JSON file), forgets them after
// their lifetime or when told, and a missing, corrupt or unwritable file means "not known", never
// an error.
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileMemo } from "../../src/state/memo.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-memo-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test("set, get from another instance, forget; keys apart", () => {
  const a = fileMemo<string>(dir, "m1", 60_000);
  a.set("x", "1");
  a.set("y", "2");
  const b = fileMemo<string>(dir, "m1", 60_000);
  expect([b.get("x"), b.get("y"), b.get("z")]).toEqual(["1", "2", undefined]);
  b.forget("x");
  expect([a.get("x"), a.get("y")]).toEqual([undefined, "2"]);
  expect(fs.statSync(path.join(dir, "m1.json")).mode & 0o777).toBe(0o600);
});

test("a fact older than its lifetime (or from the future) is not known", () => {
  let now = 1_000_000;
  const m = fileMemo<number>(dir, "m2", 1000, () => now);
  m.set("k", 7);
  now += 999;
  expect(m.get("k")).toBe(7);
  now += 2;
  expect(m.get("k")).toBeUndefined();
  now = 0;
  expect(m.get("k")).toBeUndefined();
});

test("corrupt, wrong-shaped or unwritable: not known, no error", () => {
  fs.writeFileSync(path.join(dir, "m3.json"), "{not json");
  const m = fileMemo<string>(dir, "m3", 60_000);
  expect(m.get("k")).toBeUndefined();
  m.set("k", "v");
  expect(m.get("k")).toBe("v");
  fs.writeFileSync(path.join(dir, "m4.json"), "[1,2]");
  expect(fileMemo<string>(dir, "m4", 60_000).get("0")).toBeUndefined();
  const gone = fileMemo<string>(path.join(dir, "no", "such", "dir"), "m5", 60_000);
  gone.set("k", "v");
  expect(gone.get("k")).toBeUndefined();
});
