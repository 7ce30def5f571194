// The contract between the hook's main loop (runner.ts) and whatever runs an accepted build as a
// scheduler job. The runner has already answered `# accept` and read the inputs and wanted outputs;
// the executor builds, makes every wanted output valid in the local store, and resolves to the exit
// status Nix gets (0 success; on Nix ≤ 2.28 and Lix also 100 permanent failure, 101 timed out; the
// status per Nix version is hookFailureStatus's in src/nix/version.ts).
import type { NshConfig } from "../config/nsh-conf.ts";
import type { Settings, TryRequest } from "../nix/hook-protocol.ts";
import type { ImportMethod } from "../nix/version.ts";
import { availableSchedulers } from "../schedulers/registry.ts";
import type { HookLog } from "./hook-log.ts";

export type SchedulerKind = NshConfig["job-scheduler"];

export interface BuildContext {
  req: TryRequest;
  /** closure of the input derivations' outputs plus the input sources (not the .drv itself) */
  inputs: string[];
  /** output names not yet valid locally */
  wantedOutputs: string[];
  /** the settings blob Nix sent, decoded */
  settings: Settings;
  conf: NshConfig;
  /** A message for the user: an `@nix` msg at this level (0 error … 7 vomit), dropped above the verbosity. */
  log: (level: number, msg: string) => void;
  /** A line of the build's own log (fd 4: shown live, kept for `nix log`). */
  buildLog: (line: string) => void;
  /** the same two channels with helpers (warn, info, raw build output) */
  hookLog: HookLog;
  env: Record<string, string | undefined>;
  /** the machine name Nix was given (`building '…' on '<machine>'`) */
  machine: string;
  /** verbosity from argv */
  verbosity: number;
  /** aborted on SIGTERM (Nix ≥ 2.35 sends it 500 ms before SIGKILL): cancel the job, then return */
  signal: AbortSignal;
  /** How the outputs come home when not by the local Nix's version (an external builder: restore-only). */
  importMethod?: ImportMethod;
  /** When the hook answered `# accept` (epoch ms): Nix starts its next hook only after that answer. */
  acceptedAt?: number;
  /** The local store the outputs go to (default "local"; `local?real=…` when its files live elsewhere). */
  localStore?: string;
}

export type BuildExecutor = (ctx: BuildContext) => Promise<number>;

/** The accepted build, the same for every scheduler: its steps are in build/. */
const runBuild: BuildExecutor = (ctx) => import("./build/build.ts").then((m) => m.runJobBuild(ctx));

/** One per scheduler this nsh has (schedulers/registry.ts); a scheduler without one sends every build to the fallback. */
export const executors: Partial<Record<SchedulerKind, BuildExecutor>> = {};
// A loop, not fromEntries/map: every hook start runs this (see availableSchedulers).
for (const kind of availableSchedulers()) executors[kind] = runBuild;
