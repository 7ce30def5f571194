// Copying closures between stores over the serve protocol, streaming every NAR from the source
// session into the destination (one chunk in flight per copy, whatever the NAR's size), skipping
// what the destination says it has (the shared cache only lets it ask about the requested roots
// alone, when it expects them all there), dependencies first.
import type { AddToStoreNarInfo, ServePathInfo } from "../nix/serve-protocol.ts";
import type { NarProducer, ServeClient } from "../nix/serve-client.ts";
import type { NarOutput } from "../nix/nar.ts";
import type { ImportMethod } from "../nix/version.ts";
import type { ProgressSink } from "../util/progress.ts";
import { afterValidityAnswer, firstValidityQuery, planCopy } from "./copy-plan.ts";
import { importPaths, type ImportItem, type LocalStore } from "./import-local.ts";
import { countForGc } from "../util/gc-pressure.ts";

/** Which paths a host is known to have; shared by all nsh processes (src/state). */
export interface ValidityCache {
  knownValid(host: string, paths: readonly string[]): Promise<Set<string>>;
  recordValid(host: string, paths: readonly string[]): Promise<void>;
  forget(host: string, paths: readonly string[]): Promise<void>;
}

/** The host-wide budget of bytes in flight (src/state). */
export interface ByteBudget {
  acquire(bytes: number, opts: { onWait: (msg: string) => void }): Promise<{ release(): void }>;
}

export type CopyDestination =
  | { kind: "serve"; client: ServeClient; cacheKey?: string }
  /** The local store while Nix holds the outputs' locks (the build hook's copy-back). */
  | {
    kind: "import"; name: string; store: LocalStore; method: ImportMethod; heldLocks: string[]; client: ServeClient;
    /** held-locks: `client` was opened as the import needs: the NARs go through it (import-local.ts). */
    clientImports?: boolean;
  };

export interface CopyDeps {
  progress: ProgressSink;
  cache?: ValidityCache;
  budget?: ByteBudget;
  log?: (msg: string) => void;
  /**
   * When the source is a local store whose files we can read: a path's NAR written from disk
   * (src/nix/nar-dump.ts), or undefined to ask the source's serve session for it.
   */
  readLocalNar?: (path: string) => ((sink: NarOutput) => Promise<{ narSize: number }>) | undefined;
  /**
   * Another session to the remote store (OpenSSH, src/remote/openssh.ts) for NARs of at least
   * `minBytes`, on the remote side of the copy (`to` or `from`); undefined when it does not open.
   */
  bulk?: { side: "to" | "from"; minBytes: number; open: () => Promise<ServeClient | undefined> };
}

export interface CopyResult {
  sent: string[];
  present: string[];
  bytes: number;
}

/** Bytes one transfer may hold in buffers at once: what it books against the host-wide budget. */
export const TRANSFER_WINDOW = 8 << 20;

export class CopyError extends Error {}


export async function copyClosure(from: ServeClient, to: CopyDestination, paths: readonly string[], deps: CopyDeps): Promise<CopyResult> {
  const closure = paths.length ? await from.queryClosure(paths) : [];
  const infos = await from.queryPathInfos(closure);
  const missingAtSource = closure.filter((p) => !infos.has(p));
  if (missingAtSource.length) {
    const named = `${missingAtSource.slice(0, 3).join(", ")}${missingAtSource.length > 3 ? ", …" : ""}`;
    throw new CopyError(`${from.name}: not valid there: ${named}`);
  }

  const key = to.kind === "serve" ? to.cacheKey : undefined;
  const cache = key && deps.cache ? { key, c: deps.cache } : undefined;
  const roots = [...new Set(paths)];
  const cachedRoots = cache ? await cache.c.knownValid(cache.key, roots) : new Set<string>();
  const valid = await validAtDestination(to.client, infos, closure, roots, cachedRoots);
  if (cache) {
    await cache.c.forget(cache.key, [...cachedRoots].filter((p) => !valid.has(p)));
    await cache.c.recordValid(cache.key, [...valid]);
  }
  const plan = planCopy(infos, valid);

  deps.progress.begin({ paths: plan.send.length, bytes: plan.bytes }, `copying ${plan.send.length} paths`);
  try {
    if (to.kind === "import") await importInto(from, to, plan.send, infos, deps);
    else await sendAll(from, to, plan.send, infos, deps);
  } catch (e) {
    deps.progress.end(false);
    throw e;
  }
  if (cache && plan.send.length) await cache.c.recordValid(cache.key, plan.send);
  deps.progress.end(true);
  return { sent: plan.send, present: plan.present, bytes: plan.bytes };
}

/**
 * What the destination has of `closure`, always from the destination itself (copy-plan.ts): the
 * roots alone when the cache expects them all there, else (or when one turns out missing) the rest.
 */
async function validAtDestination(
  client: ServeClient,
  infos: Map<string, ServePathInfo>,
  closure: string[],
  roots: string[],
  cachedRoots: Set<string>,
): Promise<Set<string>> {
  const asked = firstValidityQuery(roots, closure, cachedRoots);
  const said = asked.length ? await client.queryValidPaths(asked) : new Set<string>();
  const first = afterValidityAnswer(infos, closure, asked, said);
  if (first.unknown.length === 0) return first.valid;
  const more = await client.queryValidPaths(first.unknown);
  return afterValidityAnswer(infos, closure, [...asked, ...first.unknown], new Set([...said, ...more])).valid;
}

const PER_PATH_GARBAGE = 64 << 10;

/** Below this a NAR holds less than one transfer's buffers anyway: no lease (two DB writes saved per path). */
const SMALL_NAR = 1 << 20;

async function withBudget<T>(deps: CopyDeps, bytes: number, fn: () => Promise<T>): Promise<T> {
  if (!deps.budget || bytes < SMALL_NAR) return fn();
  const lease = await deps.budget.acquire(Math.min(bytes, TRANSFER_WINDOW), { onWait: (m) => deps.log?.(m) });
  try {
    return await fn();
  } finally {
    lease.release();
  }
}

/** A path's NAR from `from`, relayed chunk by chunk with progress (and GC pressure) counted. */
function relayNar(from: ServeClient, path: string, deps: CopyDeps, opts: { noHash?: boolean } = {}): NarProducer {
  return (sink) => {
    // Each path also leaves JS objects behind (requests, promises, path infos): 501 small paths
    // grew RSS by ~35 MiB with no NAR bytes to speak of. Count them as allocation too.
    countForGc(PER_PATH_GARBAGE);
    const relay: NarOutput = async (chunk: Uint8Array) => {
      await sink(chunk);
      deps.progress.bytes(path, chunk.length);
      countForGc(chunk.length);
    };
    // File contents the transport takes without nsh reading them: progress, but no garbage.
    if (sink.fromFile) relay.fromFile = (fd, offset, length) => sink.fromFile!(fd, offset, length, (n) => deps.progress.bytes(path, n));
    // Straight from the disk when we can read the source store and the receiver checks the hash.
    const onDisk = opts.noHash ? deps.readLocalNar?.(path) : undefined;
    if (onDisk) return onDisk(relay).then(({ narSize }) => ({ narSize, narHash: new Uint8Array(0) }));
    return from.dumpStorePath(path, relay, opts);
  };
}

function addInfo(path: string, info: ServePathInfo): AddToStoreNarInfo {
  return { path, deriver: info.deriver, narHash: info.narHash, references: info.references, narSize: info.narSize, sigs: info.sigs, ca: info.ca };
}

/** The receiving nix-store hashes each NAR and refuses a mismatch itself: no need to hash it here. */
const TO_SERVE = { noHash: true };

/** Small paths go in pipelined batches (their round trips overlap); large ones one by one. */
async function sendAll(
  from: ServeClient, to: CopyDestination & { kind: "serve" }, send: string[], infos: Map<string, ServePathInfo>, deps: CopyDeps,
): Promise<void> {
  let batch: string[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    const paths = batch;
    batch = [];
    for (const p of paths) deps.progress.pathStart(p, infos.get(p)!.narSize, from.name, to.client.name);
    const pending = new Set(paths);
    try {
      await to.client.addManyToStoreNar(
        paths.map((path) => {
          const info = infos.get(path)!;
          return { info: addInfo(path, info), nar: relayNar(from, path, deps, TO_SERVE) };
        }),
        32,
        (p) => {
          pending.delete(p);
          deps.progress.pathDone(p, true);
        },
      );
    } finally {
      for (const p of pending) deps.progress.pathDone(p, false);
    }
  };
  for (const p of send) {
    const info = infos.get(p)!;
    if (info.narSize < SMALL_NAR) {
      batch.push(p);
      continue;
    }
    await flush();
    await sendOne(from, to, p, info, deps);
  }
  await flush();
}

/** The bulk session for a NAR this big on the remote side `side`, if there is one and it opened. */
async function bulkFor(deps: CopyDeps, side: "to" | "from", narSize: number): Promise<ServeClient | undefined> {
  return deps.bulk?.side === side && narSize >= deps.bulk.minBytes ? deps.bulk.open() : undefined;
}

async function sendOne(from: ServeClient, to: CopyDestination & { kind: "serve" }, path: string, info: ServePathInfo, deps: CopyDeps): Promise<void> {
  const src = (await bulkFor(deps, "from", info.narSize)) ?? from;
  const dst = (await bulkFor(deps, "to", info.narSize)) ?? to.client;
  deps.progress.pathStart(path, info.narSize, src.name, dst.name);
  let ok = false;
  try {
    await withBudget(deps, info.narSize, () => dst.addToStoreNar(addInfo(path, info), relayNar(src, path, deps, TO_SERVE)));
    ok = true;
  } finally {
    deps.progress.pathDone(path, ok);
  }
}

async function importInto(
  from: ServeClient, to: CopyDestination & { kind: "import" }, send: string[], infos: Map<string, ServePathInfo>, deps: CopyDeps,
): Promise<void> {
  const items: ImportItem[] = send.map((path) => {
    const info = infos.get(path)!;
    return {
      path,
      narHash: info.narHash,
      narSize: info.narSize,
      deriver: info.deriver,
      references: info.references,
      sigs: info.sigs,
      ca: info.ca,
      nar: async (sink, opts) => {
        const src = (await bulkFor(deps, "from", info.narSize)) ?? from;
        deps.progress.pathStart(path, info.narSize, src.name, to.name);
        let ok = false;
        try {
          // Either import method hashes what it receives (opts.noHash): no need to hash it here too.
          const r = await withBudget(deps, info.narSize, () => relayNar(src, path, deps, opts)(sink));
          ok = true;
          return r;
        } finally {
          deps.progress.pathDone(path, ok);
        }
      },
    };
  });
  const session = to.clientImports && to.method === "held-locks" ? to.client : undefined;
  await importPaths(items, to.store, to.method, to.heldLocks, { log: deps.log, ...(session ? { session } : {}) });
}

