// Store paths made in a separate (chroot) store of a Nix lab, as ImportItems for importPaths: what
// the build hook's copy-back hands it, with the NAR bytes in memory (and corruptible).
import fs from "node:fs";
import path from "node:path";
import type { ImportItem } from "../../src/remote/import-local.ts";
import type { NixLab } from "../lab/nix.ts";

export interface SourcePath {
  path: string;
  nar: Uint8Array;
  narHash: string;
  narSize: number;
  references: string[];
}

/** A new path in `store` holding `content` (a single file), with its NAR and path info. */
export async function makeSourcePath(lab: NixLab, store: string, name: string, content: string): Promise<SourcePath> {
  const file = path.join(lab.root, "tmp", name);
  fs.writeFileSync(file, content);
  const q = async (argv: string[]) => {
    const r = await lab.run(["nix-store", "--store", store, ...argv]);
    if (r.code !== 0) throw new Error(`nix-store ${argv.join(" ")}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const p = await q(["--add", file]);
  const dump = Bun.spawn(["nix", "store", "dump-path", "--store", store, p], { env: lab.env, stdout: "pipe", stderr: "pipe" });
  const nar = new Uint8Array(await new Response(dump.stdout).arrayBuffer());
  if ((await dump.exited) !== 0) throw new Error(`nix-store --dump ${p} failed`);
  const refs = await q(["--query", "--references", p]);
  return { path: p, nar, narHash: await q(["--query", "--hash", p]), narSize: Number(await q(["--query", "--size", p])), references: refs ? refs.split("\n") : [] };
}

/** The ImportItem for `src`, streaming `nar` (by default its own) in two chunks. */
export function importItem(src: SourcePath, nar: Uint8Array = src.nar): ImportItem {
  return {
    path: src.path,
    narHash: src.narHash,
    narSize: src.narSize,
    references: src.references,
    nar: async (sink, opts) => {
      const half = nar.length >> 1;
      await sink(nar.subarray(0, half));
      await sink(nar.subarray(half));
      return { narSize: nar.length, narHash: opts?.noHash ? new Uint8Array(0) : new Uint8Array(new Bun.CryptoHasher("sha256").update(nar).digest()) };
    },
  };
}

/** `nar` with one byte of the file contents `marker` changed: the same size and structure, another hash. */
export function corrupt(nar: Uint8Array, marker: string): Uint8Array {
  const at = Buffer.from(nar).indexOf(marker);
  if (at < 0) throw new Error(`'${marker}' is not in the NAR`);
  const out = new Uint8Array(nar);
  out[at] = out[at]! ^ 0x01;
  return out;
}

/** Restores `src`'s files at `target` outside Nix's knowledge (what an importer does before registering). */
export async function restoreFiles(lab: NixLab, src: SourcePath, target: string): Promise<void> {
  const p = Bun.spawn(["nix-store", "--restore", target], { env: lab.env, stdin: src.nar, stdout: "ignore", stderr: "pipe" });
  if ((await p.exited) !== 0) throw new Error(`nix-store --restore ${target}: ${await new Response(p.stderr).text()}`);
}

/** Registers `src` as valid in the lab's local store (nix-store --register-validity --hash-given). */
export async function registerValid(lab: NixLab, src: SourcePath): Promise<void> {
  const line = [src.path, src.narHash, String(src.narSize), "", String(src.references.length), ...src.references].join("\n");
  const r = await lab.run(["nix-store", "--register-validity", "--hash-given"], { stdin: `${line}\n`, env: { NIX_REMOTE: "local" } });
  if (r.code !== 0) throw new Error(`registering ${src.path}: ${r.stderr}`);
}

export const isValid = async (lab: NixLab, p: string) => (await lab.run(["nix-store", "--check-validity", p], { env: { NIX_REMOTE: "local" } })).code === 0;
