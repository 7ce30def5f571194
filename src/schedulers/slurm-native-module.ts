// job-scheduler = slurm-native: Slurm through libslurm (slurm-native.ts), as the registry knows it.
// No slurmrestd and no token: libslurm authenticates through munge. It reads slurm.conf on this
// host, so the hook runs on a login node and login-host defaults to localhost.
import { type SchedulerModule } from "./scheduler.ts";

/** The note that the shim was compiled (once per Slurm release): for debugging only. */
const SHIM_COMPILED = /^slurm-native: compiled /;

export const slurmNativeModule: SchedulerModule = {
  kind: "slurm-native",
  paramsAttr: "slurmNativeConstraints",
  settings: [
    "slurm-state-dir",
    "slurm-conf",
    "slurm-native-user",
    "slurm-native-partition",
    "slurm-native-include-dir",
    "slurm-native-lib-dir",
    "slurm-native-cc",
  ],
  service: "libslurm",
  machineName: () => "slurm-native",
  defaultLoginHost: () => "localhost",
  // Nothing beyond the common settings: missing headers, compiler or libslurm are said by prepare.
  missingSetup: () => [],
  async create(conf, env, { log, debug }) {
    // On a thread of its own: libslurm's calls block (slurm-native-thread.ts).
    const { SlurmNativeThreaded } = await import("./slurm-native-thread.ts");
    if (!log) return SlurmNativeThreaded.fromConfig(conf, env);
    const route = (line: string) => (SHIM_COMPILED.test(line) ? debug?.(line) : log(line));
    return SlurmNativeThreaded.fromConfig(conf, env, route);
  },
};
