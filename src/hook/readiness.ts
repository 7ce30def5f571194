// Whether nsh is set up enough to submit a job. Pure (the file check is passed in). A hook that
// cannot submit must not accept a build only to fail it: with `build-hook = nsh` set before
// nsh.conf is written, every build of the cluster's system would break. The runner asks this once
// per hook process and, when something is missing, declines every build (Nix's own hook or a local
// build takes it) with one warning; `nsh doctor` shows the same list.
import type { NshConfig } from "../config/nsh-conf.ts";
import type { Env } from "../config/nixconf.ts";
import { schedulerModule } from "../schedulers/registry.ts";

export interface SetupInput {
  conf: NshConfig;
  env: Env;
  /** the nsh.conf files that were read (empty: none was found) */
  files: readonly string[];
  /** where nsh looked for one (for the message) */
  searched: readonly string[];
  /** whether a token file can be read by this process */
  readable: (path: string) => boolean;
}

/** What is missing before a job can be submitted, each naming the setting; empty when nsh is ready. */
export function missingSetup(i: SetupInput): string[] {
  const missing: string[] = [];
  if (i.files.length === 0) missing.push(`nsh.conf (none found at ${i.searched.join(" or ")})`);
  // Every build's job keeps its files there; the scheduler's own needs (its credentials) follow.
  if (!i.conf["slurm-state-dir"].trim()) missing.push("slurm-state-dir (where jobs keep their files on the cluster)");
  missing.push(...(schedulerModule(i.conf["job-scheduler"])?.missingSetup?.(i.conf, i.env, i.readable) ?? []));
  return missing;
}

/** The one warning a hook gives when it declines for want of setup. */
export function notReadyMessage(missing: readonly string[]): string {
  return (
    `nsh is not set up, so it builds nothing on the cluster; missing: ${missing.join("; ")}. ` +
    "Builds go to Nix's own build hook or are built locally; `nsh doctor` checks the setup"
  );
}
