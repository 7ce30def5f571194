// Nix's store path lock as Nix takes it: a second taker waits for the first, a released lock's file
// is gone, and a lock file marked stale (non-empty: Nix deleted it) is not trusted.
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { lockFileOf, lockStorePath } from "../../src/nix/path-lock.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-path-lock-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test("a second taker waits until the first releases; the lock file then goes", async () => {
  const p = path.join(dir, "aaaa-x");
  const first = await lockStorePath(p);
  let waited = 0;
  let got = false;
  const second = lockStorePath(p, () => waited++).then((l) => {
    got = true;
    return l;
  });
  for (let i = 0; i < 100 && waited === 0; i++) await Bun.sleep(10);
  expect(waited).toBe(1);
  expect(got).toBe(false);
  first.release();
  (await second).release();
  expect(fs.existsSync(lockFileOf(p))).toBe(false);
});

test("a stale lock file (non-empty) is replaced by a fresh one", async () => {
  const p = path.join(dir, "bbbb-y");
  fs.writeFileSync(lockFileOf(p), "d");
  // Its deleter marked it but could not unlink it: the taker must not spin on it forever.
  const l = await lockStorePath(p);
  expect(fs.statSync(lockFileOf(p)).size).toBe(0);
  l.release();
});
