// The runner behind `nsh copy`: configuration, ssh, the two sessions, cache, budget and progress.
import path from "node:path";
import { loadNshConf } from "../config/nsh-conf.ts";
import type { ServeClient } from "../nix/serve-client.ts";
import { makeLogger } from "../util/log.ts";
import { JsonSink, TerminalSink, nullSink, type ProgressSink } from "../util/progress.ts";
import { copyClosure } from "./copy.ts";
import { DestinationError, parseDestinations } from "./destination.ts";
import { openLocalServe, openRemoteServe, remoteServeCommand } from "./open-store.ts";
import { openBulkServe, type BulkSession } from "./openssh.ts";
import { parseSizeText } from "../util/size.ts";
import { SshPool } from "./ssh.ts";
import { sshPoolOptions } from "./ssh-options.ts";
import { openCopyState } from "./copy-state.ts";
import { localNarReader, localStoreUri } from "./local-nar.ts";

export interface CopyArgs {
  to: string[];
  from: string[];
  paths: string[];
  remoteStore?: string;
  remoteNixBinDir?: string;
  store?: string;
  json: boolean;
  sshConfig?: string;
  /** "64M", "0" (never); default nsh.conf openssh-min-size. */
  opensshMinSize?: string;
}

export async function runCopy(a: CopyArgs): Promise<number> {
  const log = makeLogger("nsh copy");
  if ((a.to.length > 0) === (a.from.length > 0)) {
    log.error("give either --to HOST or --from HOST (see nsh copy --help)");
    return 2;
  }
  if (a.paths.length === 0) {
    log.error("no store paths given");
    return 2;
  }
  let dests;
  try {
    dests = parseDestinations(a.to.length ? a.to : a.from);
  } catch (e) {
    if (e instanceof DestinationError) {
      log.error(e.message);
      return 2;
    }
    throw e;
  }
  const conf = loadNshConf();
  for (const w of conf.warnings) log.warn(w);
  if (conf.errors.length) {
    for (const e of conf.errors) log.error(e.message);
    return 1;
  }
  const c = conf.config;
  // Pins and the connect timeout (ssh-options.ts); a malformed pin or ssh config is said here.
  let pool: SshPool;
  try {
    pool = new SshPool(sshPoolOptions(c, { configFile: a.sshConfig, warn: (m) => log.warn(m) }));
  } catch (e) {
    log.error((e as Error).message);
    return 1;
  }
  const paths = a.paths.map((p) => path.resolve(p));
  const progress: ProgressSink = a.json ? new JsonSink() : process.stderr.isTTY ? new TerminalSink() : nullSink;
  const state = openCopyState(c["state-dir"] || undefined, c["copy-budget"], (m) => log.warn(m));
  const bulkMin = a.opensshMinSize !== undefined ? parseSizeText(a.opensshMinSize) : c["openssh-min-size"];
  if (bulkMin === undefined) {
    log.error(`--openssh-min-size: expected a size such as 64M or 0, got '${a.opensshMinSize}'`);
    return 2;
  }
  let local: ServeClient | undefined;
  let remote: ServeClient | undefined;
  let bulk: Promise<BulkSession | undefined> | undefined;
  try {
    local = await openLocalServe({ store: a.store });
    const storeOpts = {
      remoteStore: a.remoteStore ?? c["remote-store"],
      nixBinDir: a.remoteNixBinDir ?? (c["remote-nix-bin-dir"] || undefined),
      storeDir: local.storeDir,
    };
    const opened = await openRemoteServe(pool, dests, storeOpts);
    remote = opened.client;
    const storeDir = local.storeDir;
    // Large NARs to the host through OpenSSH (src/remote/openssh.ts), opened on first need.
    const openBulk = () =>
      (bulk ??= openBulkServe(pool, opened.destination, remoteServeCommand(storeOpts), storeDir, (m) => log.info(m)))
        .then((b) => b?.client);
    const [src, dst, cacheKey] = a.to.length ? [local, remote, opened.cacheKey] : [remote, local, undefined];
    const t0 = Date.now();
    const r = await copyClosure(src, { kind: "serve", client: dst, cacheKey }, paths, {
      bulk: bulkMin > 0 ? { side: a.to.length ? "to" : "from", minBytes: bulkMin, open: openBulk } : undefined,
      progress,
      cache: state.cache,
      budget: state.budget,
      log: (m) => log.info(m),
      readLocalNar: a.to.length ? localNarReader(localStoreUri(a.store, process.env)) : undefined,
    });
    if (!a.json) {
      const what = `${r.sent.length} paths (${(r.bytes / 1048576).toFixed(1)} MiB)`;
      const where = `${a.to.length ? "to" : "from"} ${opened.destination.text}`;
      log.info(`copied ${what} ${where} in ${((Date.now() - t0) / 1000).toFixed(2)} s; ${r.present.length} were there already`);
    }
    return 0;
  } catch (e) {
    log.error((e as Error).message);
    return 1;
  } finally {
    await Promise.allSettled([local?.close(), remote?.close(), bulk?.then((b) => b?.close())]);
    pool.close();
    state.close();
  }
}

