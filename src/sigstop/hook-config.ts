// What the wrapper tells its hook (a JSON file in the private runtime directory), and how the
// hook finds the actual build hook it relays to. The parsing and choices here are pure.
import path from "node:path";

export interface HookConfig {
  /** The FIFO the wrapper reads build events from. */
  fifo: string;
  /** The build hook the user configured or passed, split like Nix ≥ 2.17 splits it; none: Nix's default. */
  actualHook?: string[];
  /** The store the actual hook should open: the real local store, never our proxy (§1.6 deadlock). */
  hookStore: string;
  /** The store URI nix was pointed at (our relay, or in direct mode the daemon's socket). */
  proxyStore: string;
  /** Our hook script, as it appears in the settings blob. */
  hookScript: string;
}

export function splitHookSetting(value: string): string[] {
  return value.split(/\s+/).filter((s) => s.length > 0);
}

export { defaultHook } from "../nix/hook-child.ts";

/** Settings the actual hook must see differently from what Nix sent us. */
export function rewriteSettings(settings: Map<string, string>, cfg: HookConfig): Map<string, string> {
  const out = new Map(settings);
  if (out.has("build-hook")) out.set("build-hook", cfg.actualHook?.join(" ") ?? out.get("build-hook")!);
  const store = out.get("store");
  // A hook that imported outputs through our proxy would go through the daemon and deadlock on
  // the output locks Nix holds for this very build; it must open the local store directly.
  if (store !== undefined && (store === cfg.proxyStore || store.includes(path.dirname(cfg.fifo)))) out.set("store", cfg.hookStore);
  return out;
}
