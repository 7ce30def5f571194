// The configured scheduler behind politeScheduler(), as every hook and reaper uses it: the state
// database is opened here (a few ms), and a state directory that cannot be used costs only the
// politeness (one warning), never the build.
import fs from "node:fs";
import type { Env } from "../config/nixconf.ts";
import type { NshConfig } from "../config/nsh-conf.ts";
import { openStateDb } from "../state/db.ts";
import { politeOptionsFromConfig, politeScheduler } from "./polite.ts";
import { createScheduler } from "./registry.ts";
import type { CreateOptions, Scheduler } from "./scheduler.ts";

export interface OpenPoliteOptions extends CreateOptions {
  /** the local state directory (the state database is there) */
  stateDir: string;
  /** ends polite waits (rate limit, queue cap, refusals) when the build is interrupted */
  signal?: AbortSignal;
  /** what a user should hear: a wait for the rate limit or the queue cap, a refusal retried */
  notice?: (line: string) => void;
}

export type ClosableScheduler = Scheduler & { close(): void };

/** Pure: which of polite's lines a user should hear (waits, refusals); the rest is for debugging. */
export const isNotice = (line: string): boolean => /waiting|refused|trying again/.test(line);

export async function openPoliteScheduler(conf: NshConfig, env: Env, o: OpenPoliteOptions): Promise<ClosableScheduler> {
  const inner = await createScheduler(conf, env, o);
  const warn = o.log ?? (() => {});
  let db;
  try {
    // state-dir from nsh.conf may not exist yet (ensureStateDir makes only the default one).
    fs.mkdirSync(o.stateDir, { recursive: true, mode: 0o700 });
    const t0 = performance.now();
    db = openStateDb(o.stateDir);
    o.debug?.(`state database opened in ${(performance.now() - t0).toFixed(1)} ms`);
  } catch (e) {
    warn(`${(e as Error).message}; talking to the scheduler without the machine-wide rate limit, queue cap and job broker`);
    return Object.assign(inner, { close() {} });
  }
  const say = (line: string) => {
    const text = line.replace(/^nsh: /, "");
    return isNotice(text) ? o.notice?.(text) : o.debug?.(text);
  };
  // The database stays open until the process exits: the broker's lease is given up on exit.
  return politeScheduler(inner, politeOptionsFromConfig(conf, db, { ...(o.signal ? { signal: o.signal } : {}), log: say }));
}
