// Expected: a hook learns the local Nix's version from `nix-store --version` once per nix-store
// binary; the next hooks reuse it from the state directory without a process. When the binary on
// PATH changes (an upgrade: another file, or the same path rewritten), the version is asked again.
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { localNixVersion } from "../../src/hook/build/run.ts";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-nix-version-"));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const bin = path.join(root, "bin");
const state = path.join(root, "state");
const calls = path.join(root, "calls");
fs.mkdirSync(bin);
fs.mkdirSync(state);
const fakeNixStore = (version: string) =>
  fs.writeFileSync(path.join(bin, "nix-store"), `#!/bin/sh\necho x >> ${calls}\necho 'nix-store (Nix) ${version}'\n`, { mode: 0o755 });
const asked = () => (fs.existsSync(calls) ? fs.readFileSync(calls, "utf8").split("\n").filter(Boolean).length : 0);
const env = { PATH: `${bin}:/usr/bin:/bin` };

test("the version is asked once per nix-store binary, and again after it changed", async () => {
  fakeNixStore("2.8.0");
  expect((await localNixVersion(env, state)).minor).toBe(8);
  expect((await localNixVersion(env, state)).minor).toBe(8);
  expect(asked()).toBe(1);
  await Bun.sleep(20); // a new mtime even on coarse clocks
  fakeNixStore("2.26.3");
  expect((await localNixVersion(env, state)).minor).toBe(26);
  expect(asked()).toBe(2);
});

test("an unreadable memo only costs the question", async () => {
  fs.writeFileSync(path.join(state, "nix-version.json"), "{not json");
  const before = asked();
  expect((await localNixVersion(env, state)).minor).toBe(26);
  expect(asked()).toBe(before + 1);
});
