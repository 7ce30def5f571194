// Expected: the restore + register-validity import (Nix ≥ 2.29's way, forced here on the real Nix
// 2.8) never deletes a path that is valid or that another process may be registering. A path
// already valid is left as it is, even while a process reads it; a path whose Nix lock another
// process holds is not touched until that lock is released, and is then left alone if that process
// registered it; an invalid leftover nobody holds is replaced. The other paths are imported valid.
// (Before the fix every path to import was deleted and restored, holding only the outputs' locks.)
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { importPaths, type LocalStore } from "../../src/remote/import-local.ts";
import { startNixLab, type NixLab } from "../lab/nix.ts";
import { importItem, isValid, makeSourcePath, registerValid, restoreFiles } from "./import-items.ts";

let lab: NixLab;
let source: string;
let local: LocalStore;
beforeAll(async () => {
  lab = await startNixLab({ name: "inuse" });
  source = `local?root=${path.join(lab.root, "src")}`;
  local = { store: "local", env: lab.env };
});
afterAll(async () => {
  await lab?.cleanup();
});

const salt = () => `${Date.now()}-${Math.random()}`;

test("a valid path in use is left as it is; an invalid leftover is replaced; the output is imported", async () => {
  const inUse = await makeSourcePath(lab, source, "in-use", `in use ${salt()}\n`);
  const leftover = await makeSourcePath(lab, source, "leftover", `leftover ${salt()}\n`);
  const output = await makeSourcePath(lab, source, "output", `output ${salt()}\n`);
  // Valid locally too (it became valid after the copy was planned), and open in another process's hands.
  await restoreFiles(lab, inUse, inUse.path);
  await registerValid(lab, inUse);
  const inode = fs.statSync(inUse.path).ino;
  const fd = fs.openSync(inUse.path, "r");
  // An interrupted earlier copy left files, never registered.
  fs.writeFileSync(leftover.path, "half-written");
  try {
    await importPaths([importItem(inUse), importItem(leftover), importItem(output)], local, "restore-register", [output.path]);
    expect(fs.fstatSync(fd).nlink).toBe(1);
    expect(fs.statSync(inUse.path).ino).toBe(inode);
  } finally {
    fs.closeSync(fd);
  }
  for (const p of [inUse, leftover, output]) {
    expect(await isValid(lab, p.path)).toBe(true);
    expect((await lab.run(["nix-store", "--verify-path", p.path], { env: { NIX_REMOTE: "local" } })).code).toBe(0);
  }
});

test("a path whose lock another process holds is not touched under it", async () => {
  const dep = await makeSourcePath(lab, source, "locked-dep", `locked ${salt()}\n`);
  const output = await makeSourcePath(lab, source, "locked-out", `out ${salt()}\n`);
  // The other process has written the files and is about to register them.
  await restoreFiles(lab, dep, dep.path);
  const inode = fs.statSync(dep.path).ino;
  const holder = Bun.spawn([process.execPath, path.join(import.meta.dir, "fixtures", "hold-lock.ts"), dep.path], { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
  try {
    const said = holder.stdout.getReader();
    expect(new TextDecoder().decode((await said.read()).value)).toBe("held\n");

    let waiting!: () => void;
    const seenWaiting = new Promise<void>((resolve) => (waiting = resolve));
    let settled = false;
    const log = (m: string) => m.includes("waiting") && waiting();
    const importing = importPaths([importItem(dep), importItem(output)], local, "restore-register", [output.path], { log }).finally(() => (settled = true));
    importing.catch(() => {});
    // Either the import waits for the lock, or (the bug) it goes ahead under it.
    await Promise.race([seenWaiting, importing.catch(() => {})]);
    expect(settled).toBe(false);
    expect(fs.statSync(dep.path).ino).toBe(inode);

    await registerValid(lab, dep);
    holder.stdin.end();
    await importing;
    expect(fs.statSync(dep.path).ino).toBe(inode);
  } finally {
    holder.kill();
    await holder.exited;
  }
  for (const p of [dep, output]) expect(await isValid(lab, p.path)).toBe(true);
  expect(fs.existsSync(`${dep.path}.lock`)).toBe(false);
});
