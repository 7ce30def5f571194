// The configured scheduler, built from nsh.conf. slurm-native and pbs add one line each here.
import type { NshConfig } from "../config/nsh-conf.ts";
import { SchedulerError, type Scheduler } from "../schedulers/scheduler.ts";
import { SlurmRestScheduler } from "../schedulers/slurm-rest.ts";

/** The derivation attribute that carries per-build scheduler parameters. */
export const PARAMS_ATTR: Record<NshConfig["job-scheduler"], string> = {
  slurm: "extraSlurmParams",
  "slurm-native": "slurmNativeConstraints",
  pbs: "pbsResources",
};

export function schedulerFor(conf: NshConfig, env: Record<string, string | undefined> = process.env, log?: (line: string) => void): Scheduler {
  switch (conf["job-scheduler"]) {
    case "slurm":
      return SlurmRestScheduler.fromConfig(conf, env, log ? { log } : {});
    default:
      throw new SchedulerError("config", `job-scheduler ${conf["job-scheduler"]} is not available in this nsh yet; use slurm`);
  }
}
