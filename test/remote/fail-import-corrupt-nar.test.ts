// Expected: a NAR that does not match its path info (bytes changed on the way, or a wrong narHash)
// is rejected by both import methods (held locks: `nix-store --serve --write` AddToStoreNar on the
// local store; restore + register-validity), with an error naming the path, and nothing is
// registered: the path is not valid afterwards, and the restore method leaves no files behind.
// Real Nix 2.8; the output's lock is listed as held, as the build hook's copy-back does.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { importPaths, physicalPath, type LocalStore } from "../../src/remote/import-local.ts";
import type { ImportMethod } from "../../src/nix/version.ts";
import { startNixLab, type NixLab } from "../lab/nix.ts";
import { corrupt, importItem, isValid, makeSourcePath } from "./import-items.ts";

let lab: NixLab;
let source: string;
let local: LocalStore;
beforeAll(async () => {
  lab = await startNixLab({ name: "badnar" });
  source = `local?root=${path.join(lab.root, "src")}`;
  local = { store: "local", env: lab.env };
});
afterAll(async () => {
  await lab?.cleanup();
});

const methods: ImportMethod[] = ["held-locks", "restore-register"];
const cases = methods.flatMap((m) => [
  [m, "bytes changed on the way"],
  [m, "a wrong narHash in the path info"],
]) as [ImportMethod, string][];

test.each(cases)("%s: %s is rejected and nothing registered", async (method, fault) => {
  const marker = `payload-${method}-${fault.length}-${Date.now()}`;
  const good = await makeSourcePath(lab, source, "output", `${marker}\n`);
  const other = await makeSourcePath(lab, source, "other", `other ${marker}\n`);
  const item = fault.startsWith("bytes") ? importItem(good, corrupt(good.nar, marker)) : { ...importItem(good), narHash: other.narHash };
  const err = await importPaths([item], local, method, [good.path]).then(
    () => undefined,
    (e: Error) => e,
  );
  expect(err).toBeInstanceOf(Error);
  expect(err!.message).toContain(path.basename(good.path));
  expect(await isValid(lab, good.path)).toBe(false);
  if (method === "restore-register") expect(fs.existsSync(physicalPath("local", good.path))).toBe(false);
  // The same path with its true NAR then imports fine.
  await importPaths([importItem(good)], local, method, [good.path]);
  expect(await isValid(lab, good.path)).toBe(true);
});
