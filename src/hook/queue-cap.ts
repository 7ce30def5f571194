// max-queued-jobs before a build is accepted: at the cap the hook answers `# postpone`, so Nix
// releases the build's output locks and asks again after a while or when one of its builds ends,
// instead of a hook that holds a build slot and its locks while it waits to submit. (A race between
// hooks that all saw room is settled at the submit, which waits for a slot: schedulers/polite.ts.)
import type { Env } from "../config/nixconf.ts";
import type { NshConfig } from "../config/nsh-conf.ts";
import { endpointKey } from "../schedulers/polite.ts";
import { openStateDb } from "../state/db.ts";
import { ensureStateDir } from "../state/dir.ts";
import { capDecision, JobWatchTable } from "../state/job-watch.ts";

/** Pure: the hook's answer for a build nsh would take, given this machine's queued nsh jobs. */
export function admission(queued: number, cap: number): "accept" | "postpone" {
  return capDecision(queued, cap) === "go" ? "accept" : "postpone";
}

/**
 * How many of this machine's nsh jobs of the configured scheduler are queued, when that is at the
 * cap; undefined when a build may be accepted (no cap, room, or a state directory that cannot be
 * read: then the submit's own wait still holds the cap).
 */
export async function queuedAtCap(conf: NshConfig, env: Env): Promise<number | undefined> {
  const cap = conf["max-queued-jobs"];
  if (cap <= 0) return undefined;
  let db;
  try {
    db = openStateDb(conf["state-dir"] || ensureStateDir(env));
    const queued = await new JobWatchTable(db, endpointKey(conf)).queued();
    return admission(queued, cap) === "postpone" ? queued : undefined;
  } catch {
    return undefined;
  } finally {
    db?.close();
  }
}
