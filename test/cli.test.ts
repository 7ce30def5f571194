// The binary's personalities: the name it is invoked by picks one; every command has --help and
// --version; bad arguments get a message naming what is wrong.
import { expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { DIST } from "./sigstop/helpers.ts";

const run = async (argv: string[]) => {
  const p = Bun.spawn(argv, { stdio: ["ignore", "pipe", "pipe"] });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { stdout, stderr, code };
};

test.each([
  [["nsh", "--version"], /0\.1\.0/],
  [["nix-sigstop", "--version"], /nix-sigstop \(nsh\) 0\.1\.0/],
  [["nsh", "sigstop", "--version"], /nix-sigstop \(nsh\) 0\.1\.0/],
  [["nsh", "--help"], /sigstop/],
  [["nix-sigstop", "--help"], /USAGE nix-sigstop \[OPTIONS\] \[--\] <nix arguments>/],
  [["nsh", "sigstop", "--help"], /--resume-max-wait/],
])("%p", async ([name, ...args], out) => {
  const r = await run([path.join(DIST, name!), ...args]);
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(out);
});

test("any name that is not nix-sigstop is nsh; a renamed copy still works", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-cli-"));
  try {
    fs.symlinkSync(path.join(DIST, "nsh"), path.join(dir, "nix-sigstop"));
    expect((await run([path.join(dir, "nix-sigstop"), "--version"])).stdout).toContain("nix-sigstop");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("an unknown subcommand is an error", async () => {
  const r = await run([path.join(DIST, "nsh"), "frobnicate"]);
  expect(r.code).not.toBe(0);
  expect(r.stdout + r.stderr).toContain("frobnicate");
});
