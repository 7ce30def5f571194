// The contract between the hook's main loop (runner.ts) and whatever runs an accepted build as a
// scheduler job. The runner has already answered `# accept` and read the inputs and wanted outputs;
// the executor builds, makes every wanted output valid in the local store, and resolves to the exit
// status Nix gets (0 success; on Nix ≤ 2.28 and Lix also 100 permanent failure, 101 timed out; the
// status per Nix version is hookFailureStatus's in src/nix/version.ts).
import type { NshConfig } from "../config/nsh-conf.ts";
import type { Settings, TryRequest } from "../nix/hook-protocol.ts";
import type { HookLog } from "./hook-log.ts";

export type SchedulerKind = "slurm" | "slurm-native" | "pbs";

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
}

export type BuildExecutor = (ctx: BuildContext) => Promise<number>;

/** Filled by the scheduler modules; a scheduler without one sends every build to the fallback. */
export const executors: Record<SchedulerKind, BuildExecutor | undefined> = {
  slurm: (ctx) => import("./build-job.ts").then((m) => m.runJobBuild(ctx)),
  "slurm-native": undefined,
  pbs: undefined,
};

export const isSchedulerKind = (s: string): s is SchedulerKind => s in executors;

/** What Nix shows as the machine: `building '…drv' on 'slurm:login1'`. */
export function machineName(conf: NshConfig): string {
  switch (conf["job-scheduler"]) {
    case "slurm":
      return `slurm:${conf["slurm-api-host"]}`;
    case "slurm-native":
      return "slurm-native";
    case "pbs":
      return conf["pbs-host"] ? `pbs:${conf["pbs-host"]}` : "pbs";
    default:
      return conf["job-scheduler"];
  }
}
