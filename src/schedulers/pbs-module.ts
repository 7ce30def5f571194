// job-scheduler = pbs (libpbs, pbs.ts) and pbs-cli (qsub/qstat/qdel, pbs-cli.ts), as the registry
// knows them. Light: each scheduler's code is imported only when a scheduler is made. Neither has
// credentials of its own: PBS trusts the submitting uid (pbs-user, pbs-cli-user), so nothing is
// missing from the setup beyond what every backend needs (slurm-state-dir, readiness.ts).
import type { SchedulerModule } from "./scheduler.ts";

// Not secrets, but where the server and the tools are (pbs.conf, honouring PBS_CONF_FILE): the
// reaper, which builds its scheduler from the hook's settings and these alone, must find the same.
const PBS_ENV = ["PBS_CONF_FILE", "PBS_SERVER"] as const;

const timeLimit = { scheduler: "PBS", raise: "set walltime in pbsResources" };

const pbsHostOf = (conf: { "pbs-host": string }): string => conf["pbs-host"].trim();

export const pbsModule: SchedulerModule = {
  kind: "pbs",
  paramsAttr: "pbsResources",
  settings: ["slurm-state-dir", "pbs-host", "pbs-port", "pbs-user", "pbs-lib"],
  service: "pbs_server",
  secretEnv: PBS_ENV,
  timeLimit,
  machineName: (conf) => (pbsHostOf(conf) ? `pbs:${pbsHostOf(conf)}` : "pbs"),
  defaultLoginHost: pbsHostOf,
  async create(conf, env) {
    const { PbsScheduler } = await import("./pbs.ts");
    return PbsScheduler.fromConfig(conf, env);
  },
};

export const pbsCliModule: SchedulerModule = {
  kind: "pbs-cli",
  paramsAttr: "pbsResources",
  settings: ["slurm-state-dir", "pbs-bin-dir", "pbs-cli-user", "pbs-host", "pbs-port"],
  service: "PBS command-line tools",
  secretEnv: PBS_ENV,
  timeLimit,
  machineName: (conf) => (pbsHostOf(conf) ? `pbs-cli:${pbsHostOf(conf)}` : "pbs-cli"),
  defaultLoginHost: pbsHostOf,
  async create(conf, env, { log }) {
    const { PbsCliScheduler } = await import("./pbs-cli.ts");
    return PbsCliScheduler.fromConfig(conf, env, log ? { log } : {});
  },
};
