// job-scheduler → the module that runs its jobs. Each entry is a light descriptor (scheduler.ts
// SchedulerModule); the scheduler's own code is imported only when a scheduler is created, so a
// hook that declines a build, or only checks its setup, loads none. Adding a scheduler: its own
// files, and one line here.
import type { Env } from "../config/nixconf.ts";
import type { NshConfig } from "../config/nsh-conf.ts";
import {
  type CreateOptions, type Scheduler, type SchedulerModule, SchedulerError, type TimeLimitWords,
} from "./scheduler.ts";
import { pbsCliModule, pbsModule } from "./pbs-module.ts";
import { slurmCliModule } from "./slurm-cli-module.ts";
import { slurmNativeModule } from "./slurm-native-module.ts";
import { slurmRestModule } from "./slurm-rest-module.ts";

type Kind = NshConfig["job-scheduler"];

const MODULES: Partial<Record<Kind, SchedulerModule>> = {
  slurm: slurmRestModule,
  "slurm-native": slurmNativeModule,
  "slurm-cli": slurmCliModule,
  pbs: pbsModule,
  "pbs-cli": pbsCliModule,
};

/** The descriptor of a job-scheduler value (undefined: nsh knows no such scheduler). */
export const schedulerModule = (kind: string): SchedulerModule | undefined => MODULES[kind as Kind];

/** The job-scheduler values this nsh can submit jobs with. */
export const availableSchedulers = (): Kind[] => {
  // A loop, not flatMap: every hook start runs this (hook/executor.ts), and a JS-implemented builtin
  // costs ~0.1 ms of CPU on its first use in a process (bench/startup.ts).
  const kinds: Kind[] = [];
  for (const m of Object.values(MODULES)) if (m?.create) kinds.push(m.kind);
  return kinds;
};

/** The derivation attribute of per-build parameters for `kind`. */
export const paramsAttrOf = (kind: string): string => schedulerModule(kind)?.paramsAttr ?? "extraSlurmParams";

/** How `kind` names a job's time limit and where a derivation raises it (undefined: Slurm's words). */
export const timeLimitWordsOf = (kind: string): TimeLimitWords | undefined => schedulerModule(kind)?.timeLimit;

/** What Nix shows as the machine: `building '…drv' on 'slurm:login1'`. */
export const machineName = (conf: NshConfig): string =>
  schedulerModule(conf["job-scheduler"])?.machineName(conf) ?? conf["job-scheduler"];

/** Where nsh reaches the cluster over ssh: login-host, else the scheduler's own host. */
export const loginHostOf = (conf: NshConfig): string =>
  conf["login-host"] || schedulerModule(conf["job-scheduler"])?.defaultLoginHost?.(conf) || "localhost";

/** The configured scheduler (its module is imported now). */
export async function createScheduler(conf: NshConfig, env: Env = process.env, opts: CreateOptions = {}): Promise<Scheduler> {
  const kind = conf["job-scheduler"];
  const m = schedulerModule(kind);
  if (!m?.create) {
    const have = availableSchedulers().join(" or ");
    throw new SchedulerError("config", `job-scheduler ${kind} is not available in this nsh yet; use ${have}`);
  }
  return m.create(conf, env, opts);
}
