// Importing store paths into the local store while Nix holds their output locks (the build hook's
// situation, nix-protocols.md §1.6). A plain import through the daemon would wait for those locks
// forever. Two ways out, chosen by the local Nix's version:
//  - held-locks (Nix ≤ 2.28, Lix): `nix-store --serve --write` (AddToStoreNar) on the local store
//    directly, with the locked outputs in NIX_HELD_LOCKS;
//  - restore-register (Nix ≥ 2.29): unpack each NAR with `nix-store --restore`, then register the
//    batch with `nix-store --register-validity --hash-given`, which takes no path locks. So we take
//    Nix's lock on every path but the outputs ourselves, and restore only what is invalid under it.
// Either way a path is registered only after all of its bytes arrived and its hash checked out.
import fs from "node:fs";
import path from "node:path";
import { formatNarHash, parseNarHash } from "../nix/hash.ts";
import type { NarOutput } from "../nix/nar.ts";
import { ServeClient } from "../nix/serve-client.ts";
import type { ImportMethod } from "../nix/version.ts";
import { lockStorePath, type PathLock } from "../nix/path-lock.ts";
import { spawnDuplex } from "./local-process.ts";

export interface ImportItem {
  path: string;
  narHash: string;
  narSize: number;
  deriver?: string;
  references: string[];
  sigs?: readonly string[];
  ca?: string;
  /** Streams the NAR into `sink` (unhashed with `noHash`: the import hashes what it receives). */
  nar: (sink: NarOutput, opts?: { noHash?: boolean }) => Promise<{ narHash: Uint8Array; narSize: number }>;
}

export interface LocalStore {
  /** Store URI for local commands: "local", "local?root=/x", a chroot path. */
  store: string;
  nixBinDir?: string;
  env?: Record<string, string | undefined>;
}

export class ImportError extends Error {}

type Env = Record<string, string | undefined>;

const bin = (s: LocalStore, prog: string) => (s.nixBinDir ? path.join(s.nixBinDir, prog) : prog);

/**
 * Where a store path's files live on disk. A chroot store (`local?root=R`, or a bare path R) keeps
 * them in `R/nix/store` whatever its logical store directory, unless `real=` says otherwise.
 */
export function physicalPath(store: string, storePath: string): string {
  const param = (name: string) => {
    const v = new RegExp(`[?&]${name}=([^&]+)`).exec(store)?.[1];
    return v === undefined ? undefined : decodeURIComponent(v);
  };
  const real = param("real");
  if (real) return path.join(real, path.basename(storePath));
  const root = store.startsWith("/") ? store.split("?")[0] : param("root");
  return root ? path.join(root, "nix", "store", path.basename(storePath)) : storePath;
}

function checkHash(item: ImportItem, got: { narHash: Uint8Array; narSize: number }): void {
  const want = parseNarHash(item.narHash);
  if (got.narSize !== item.narSize || Buffer.compare(Buffer.from(want), Buffer.from(got.narHash)) !== 0)
    throw new ImportError(
      `${item.path}: the NAR received (${got.narSize} bytes, ${formatNarHash(got.narHash)})` +
        ` does not match its path info (${item.narSize} bytes, ${item.narHash})`,
    );
}

async function runWithStdin(
  argv: string[],
  env: Record<string, string | undefined>,
  feed: (write: (b: Uint8Array) => Promise<void>) => Promise<void>,
  what: string,
): Promise<void> {
  const proc = Bun.spawn(argv, { stdin: "pipe", stdout: "ignore", stderr: "pipe", env: env as Record<string, string> });
  const stderr = new Response(proc.stderr).text();
  const write = async (b: Uint8Array) => {
    proc.stdin.write(b);
    await proc.stdin.flush();
  };
  let fed: Error | undefined;
  try {
    await feed(write);
  } catch (e) {
    fed = e as Error;
  }
  try {
    await proc.stdin.end();
  } catch {}
  // A writer that failed usually failed because the command did (disk full, say): its words first,
  // but it may be stuck. One that was fed everything is finishing its work (writing, registering).
  const code = fed ? await Promise.race([proc.exited, Bun.sleep(2000).then(() => undefined)]) : await proc.exited;
  if (code === undefined) proc.kill("SIGKILL");
  const said = (await stderr).trim().split("\n").slice(-3).join(" / ");
  if (code !== 0 && code !== undefined && said) throw new ImportError(`${what} failed (exit ${code}): ${said}`);
  if (fed) throw fed;
  if (code !== 0) throw new ImportError(`${what} failed (exit ${code ?? "killed"}): ${said}`);
}

/**
 * Nix ≤ 2.28: a `nix-store --serve --write` on the local store itself, told which locks its build
 * holds. AddToStoreNar streams each NAR into place and checks its hash; `nix-store --import` would
 * hold the whole NAR in memory first (Nix 2.8 warns above 256 MiB) before writing any of it.
 */
async function addUnderHeldLocks(
  items: ImportItem[],
  store: LocalStore,
  env: Record<string, string | undefined>,
  heldLocks: string[],
  session?: ServeClient,
): Promise<void> {
  const describe = `nix-store --serve --write on ${store.store}`;
  const client = session ?? (await ServeClient.open(
    spawnDuplex(heldLocksServeArgv(store), { env: heldLocksEnv(env, heldLocks), describe }),
    path.dirname(items[0]!.path),
    store.store === "local" ? "local store" : store.store,
  ));
  try {
    for (const item of items) {
      const info = {
        path: item.path,
        narHash: item.narHash,
        narSize: item.narSize,
        deriver: item.deriver,
        references: item.references,
        sigs: item.sigs,
        ca: item.ca,
      };
      await client.addToStoreNar(info, (sink) => item.nar(sink, { noHash: true }));
    }
  } finally {
    if (!session) await client.close();
  }
}

/** The held-locks import's `nix-store --serve --write`: on the local store itself, told the locks Nix holds. */
export const heldLocksServeArgv = (store: LocalStore): string[] => [bin(store, "nix-store"), "--serve", "--write"];
export const heldLocksEnv = (env: Record<string, string | undefined>, heldLocks: readonly string[]) =>
  ({ ...env, NIX_HELD_LOCKS: heldLocks.join(" ") });
/** The environment of every local command of an import into `store`. */
export const importEnv = (store: LocalStore) => ({ ...(store.env ?? process.env), NIX_REMOTE: store.store });

export interface ImportOptions {
  log?: (msg: string) => void;
  /** held-locks: a session opened as heldLocksServeArgv/heldLocksEnv say, used instead of a new one (left open). */
  session?: ServeClient;
}

export async function importPaths(
  items: ImportItem[],
  store: LocalStore,
  method: ImportMethod,
  heldLocks: string[],
  opts: ImportOptions = {},
): Promise<void> {
  if (items.length === 0) return;
  const env = importEnv(store);
  if (method === "held-locks") return addUnderHeldLocks(items, store, env, heldLocks, opts.session);
  if (method === "restore-only") return restoreOnly(items, store, env, heldLocks);
  return restoreAndRegister(items, store, env, heldLocks, opts);
}

/** Pure: the paths whose Nix lock the import takes itself (Nix holds the outputs'), in Nix's order. */
export function pathsToLock(items: readonly { path: string }[], heldLocks: readonly string[]): string[] {
  const held = new Set(heldLocks);
  return [...new Set(items.map((i) => i.path).filter((p) => !held.has(p)))].sort();
}

/**
 * Nix ≥ 2.29. Under the locks (ours and Nix's) no other process adds, builds or collects these
 * paths, so what is valid now is left alone (it may be in use) and what is on disk but invalid is
 * an abandoned leftover that may go.
 */
async function restoreAndRegister(
  items: ImportItem[],
  store: LocalStore,
  env: Env,
  heldLocks: string[],
  opts: ImportOptions,
): Promise<void> {
  const locks: PathLock[] = [];
  const restored: ImportItem[] = [];
  try {
    for (const p of pathsToLock(items, heldLocks)) {
      const waiting = () => opts.log?.(`waiting for another process's lock on ${p}`);
      locks.push(await lockStorePath(physicalPath(store.store, p), waiting));
    }
    const invalid = await invalidPaths(items.map((i) => i.path), store, env);
    const todo = items.filter((i) => invalid.has(i.path));
    for (const item of todo) {
      const target = physicalPath(store.store, item.path);
      removeTree(target);
      restored.push(item);
      const feed = async (write: (b: Uint8Array) => Promise<void>) => checkHash(item, await feedHashed(item, write));
      await runWithStdin([bin(store, "nix-store"), "--restore", target], env, feed, `nix-store --restore ${target}`);
    }
    if (todo.length === 0) return;
    const reg = todo.map((i) =>
      [i.path, i.narHash, String(i.narSize), i.deriver ?? "", String(i.references.length), ...i.references].join("\n"));
    const feed = (write: (b: Uint8Array) => Promise<void>) => write(new TextEncoder().encode(`${reg.join("\n")}\n`));
    const argv = [bin(store, "nix-store"), "--register-validity", "--hash-given"];
    await runWithStdin(argv, env, feed, `registering ${todo.length} paths in ${store.store}`);
  } catch (e) {
    // Still under the locks: what we restored and did not get registered goes.
    const left = await invalidPaths(restored.map((i) => i.path), store, env).catch(() => new Set<string>());
    for (const i of restored) if (left.has(i.path)) removeTree(physicalPath(store.store, i.path));
    throw e;
  } finally {
    for (const l of locks) l.release();
  }
}

/**
 * An external builder (Nix ≥ 2.32) stands where the builder would: Nix holds the output locks and
 * registers whatever is at the output paths once the program exits. So each output is only unpacked
 * in place; anything else the outputs need must already be valid here (it is among the build's inputs).
 */
async function restoreOnly(items: ImportItem[], store: LocalStore, env: Env, outputs: string[]): Promise<void> {
  const foreign = items.filter((i) => !outputs.includes(i.path)).map((i) => i.path);
  if (foreign.length) {
    const some = foreign.slice(0, 3).join(", ");
    throw new ImportError(`the outputs refer to paths that are neither outputs nor inputs of the build: ${some}`);
  }
  for (const item of items) {
    const target = physicalPath(store.store, item.path);
    removeTree(target);
    const feed = async (write: (b: Uint8Array) => Promise<void>) => checkHash(item, await feedHashed(item, write));
    try {
      await runWithStdin([bin(store, "nix-store"), "--restore", target], env, feed, `nix-store --restore ${target}`);
    } catch (e) {
      removeTree(target);
      throw e;
    }
  }
}

/** Streams the item's NAR into `write`, hashing what actually goes to the restore. */
async function feedHashed(
  item: ImportItem,
  write: (b: Uint8Array) => Promise<void>,
): Promise<{ narHash: Uint8Array; narSize: number }> {
  const hasher = new Bun.CryptoHasher("sha256");
  let narSize = 0;
  await item.nar(
    async (chunk) => {
      hasher.update(chunk);
      narSize += chunk.length;
      await write(chunk);
    },
    { noHash: true },
  );
  return { narHash: new Uint8Array(hasher.digest()), narSize };
}

/** Which of `paths` the store says are not valid (asked afresh: no session's cache in between). */
async function invalidPaths(paths: string[], store: LocalStore, env: Env): Promise<Set<string>> {
  const invalid = new Set<string>();
  for (let i = 0; i < paths.length; i += 1000) {
    const argv = [bin(store, "nix-store"), "--check-validity", "--print-invalid", ...paths.slice(i, i + 1000)];
    const proc = Bun.spawn(argv, {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      env: env as Record<string, string>,
    });
    const [out, err, code] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    const said = err.trim().split("\n").slice(-3).join(" / ");
    if (code !== 0) {
      const what = `asking ${store.store} which of ${paths.length} paths are valid`;
      throw new ImportError(`${what} failed (exit ${code}): ${said}`);
    }
    for (const p of out.split("\n")) if (p) invalid.add(p);
  }
  return invalid;
}

function removeTree(p: string): void {
  if (!fs.existsSync(p) && !isSymlink(p)) return;
  // Restored files are read-only; make them writable so they can go.
  try {
    Bun.spawnSync(["chmod", "-R", "u+w", p]);
  } catch {}
  fs.rmSync(p, { recursive: true, force: true });
}

function isSymlink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}
