// The configured scheduler, built from nsh.conf. slurm-native and pbs add one line each here.
import { fileMemo } from "../state/memo.ts";
import type { NshConfig } from "../config/nsh-conf.ts";
import { SchedulerError, type Scheduler } from "../schedulers/scheduler.ts";
import { SlurmRestScheduler } from "../schedulers/slurm-rest.ts";

/** The derivation attribute that carries per-build scheduler parameters. */
export const PARAMS_ATTR: Record<NshConfig["job-scheduler"], string> = {
  slurm: "extraSlurmParams",
  "slurm-native": "slurmNativeConstraints",
  pbs: "pbsResources",
};

/** How long a hook trusts the REST API version an earlier hook negotiated with the same server. */
const API_VERSION_LIFETIME_MS = 3600_000;

/** `memoDir`: the local state directory, where what one hook negotiated saves the next one a request. */
export function schedulerFor(conf: NshConfig, env: Record<string, string | undefined> = process.env, log?: (line: string) => void, memoDir?: string): Scheduler {
  switch (conf["job-scheduler"]) {
    case "slurm": {
      const memo = memoDir ? fileMemo<string>(memoDir, "slurm-api-version", API_VERSION_LIFETIME_MS) : undefined;
      const key = `${conf["slurm-api-host"]}:${conf["slurm-api-port"]}`;
      const rememberedVersion = memo && { get: () => memo.get(key), set: (v: string) => memo.set(key, v), forget: () => memo.forget(key) };
      return SlurmRestScheduler.fromConfig(conf, env, { ...(log ? { log } : {}), ...(rememberedVersion ? { rememberedVersion } : {}) });
    }
    default:
      throw new SchedulerError("config", `job-scheduler ${conf["job-scheduler"]} is not available in this nsh yet; use slurm`);
  }
}
