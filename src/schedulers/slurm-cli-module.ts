// job-scheduler = slurm-cli: Slurm through sbatch/squeue/sacct/scancel (slurm-cli.ts), as the registry
// knows it. No slurmrestd and no token: the tools authenticate through munge like any user's. The
// tools read slurm.conf (or ask slurmctld, configless), so the hook runs where sbatch works: the
// login node itself, hence login-host defaults to localhost.
import { type SchedulerModule } from "./scheduler.ts";

/** slurm-cli's line for each tool call (`slurm-cli: squeue -> 0 in 14.6 ms`): for debugging only. */
const TOOL_CALL = /^slurm-cli: [\w -]+ -> (\d+|timed out) in /;

export const slurmCliModule: SchedulerModule = {
  kind: "slurm-cli",
  paramsAttr: "extraSlurmParams",
  settings: ["slurm-state-dir", "slurm-bin-dir", "slurm-conf", "slurm-cli-user", "slurm-extra-submission-params"],
  service: "sbatch/squeue/scancel",
  machineName: () => "slurm-cli",
  defaultLoginHost: () => "localhost",
  // Nothing beyond the common settings: missing tools or slurm.conf are said by prepare (and doctor).
  missingSetup: () => [],
  async create(conf, env, { log, debug }) {
    const { SlurmCliScheduler } = await import("./slurm-cli.ts");
    if (!log) return SlurmCliScheduler.fromConfig(conf, env);
    const route = (line: string) => (TOOL_CALL.test(line) ? debug?.(line) : log(line));
    return SlurmCliScheduler.fromConfig(conf, env, { log: route });
  },
};
