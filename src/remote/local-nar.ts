// Reading NARs of the local store from disk instead of through a local `nix-store --serve`
// (which costs a process, a pipe and a copy per chunk). Only for stores whose files are where
// we can compute them: the default store, the daemon, a chroot store. Anything else (or a path
// we cannot read) goes through the serve session as before.
import fs from "node:fs";
import { dumpNar } from "../nix/nar-dump.ts";
import type { NarOutput } from "../nix/nar.ts";
import { physicalPath } from "./import-local.ts";
import { loadNixConf } from "../config/nixconf.ts";

export type LocalNarReader = (storePath: string) => ((sink: NarOutput) => Promise<{ narSize: number }>) | undefined;

/** Whether a store URI names a store whose files live on this machine's disk (pure). */
export function storeOnDisk(store: string): boolean {
  if (store === "" || store === "auto" || store === "daemon" || store === "local") return true;
  return store.startsWith("unix://") || store.startsWith("local?") || store.startsWith("daemon?") || store.startsWith("/");
}

export function localNarReader(store: string): LocalNarReader | undefined {
  if (!storeOnDisk(store)) return undefined;
  return (storePath) => {
    const onDisk = physicalPath(store, storePath);
    try {
      fs.accessSync(onDisk, fs.constants.R_OK);
    } catch {
      return undefined;
    }
    return (sink) => dumpNar(onDisk, sink);
  };
}

/** The store a local `nix-store` opens: the given one, else nix.conf's `store`, else NIX_REMOTE. */
export function localStoreUri(store: string | undefined, env: Record<string, string | undefined>): string {
  if (store) return store;
  try {
    const fromConf = loadNixConf(env).settings.get("store")?.value;
    if (fromConf) return fromConf;
  } catch {}
  return env.NIX_REMOTE || "auto";
}
