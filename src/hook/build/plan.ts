// Step 1 of an accepted build: what its job will be. The derivation is read and its per-build
// scheduler parameters checked (a malformed attribute, or a key it may not set, is the derivation's
// fault: it fails here, before anything is submitted); the job gets its key and cluster directory.
import fs from "node:fs";
import { type Derivation, parseDerivation } from "../../nix/derivation.ts";
import { paramsAttrOf } from "../../schedulers/registry.ts";
import type { JobSpec } from "../../schedulers/scheduler.ts";
import { ensureStateDir } from "../../state/dir.ts";
import type { BuildContext } from "../executor.ts";
import { buildLimits, derivationParams, jobDir, jobSpec } from "../job-plan.ts";
import { pilotSlots } from "../pilot-slots.ts";

export interface BuildPlan {
  drv: Derivation;
  /** the derivation attribute of per-build scheduler parameters (extraSlurmParams, …) */
  paramsAttr: string;
  /** the job's record key, unique per hook */
  key: string;
  /** slurm-state-dir: where jobs keep their files on the cluster */
  clusterState: string;
  /** the job's directory there */
  dir: string;
  /** the local state directory (records, memos) */
  localState: string;
}

export function planBuild(ctx: BuildContext): BuildPlan {
  const { conf, req } = ctx;
  const env = ctx.env ?? process.env;
  const clusterState = conf["slurm-state-dir"];
  if (!clusterState) throw new Error("nsh.conf: slurm-state-dir is not set (where jobs keep their files on the cluster)");
  const localState = conf["state-dir"] || ensureStateDir(env);
  const drv = parseDerivation(fs.readFileSync(req.drvPath, "utf8"));
  const paramsAttr = paramsAttrOf(conf["job-scheduler"]);
  derivationParams(drv, req.drvPath, paramsAttr, conf["derivation-params-allow"]);
  const key = `${Date.now().toString(36)}-${process.pid}`;
  return { drv, paramsAttr, key, clusterState, dir: jobDir(clusterState, key), localState };
}

/** The job to submit, once the agent's place on the cluster is known. */
export function planJob(ctx: BuildContext, plan: BuildPlan, agentPath: string, startNotice?: string): JobSpec {
  const { conf, req } = ctx;
  return jobSpec({
    drvPath: req.drvPath,
    drv: plan.drv,
    stateDir: plan.clusterState,
    key: plan.key,
    agentPath,
    remoteStore: conf["remote-store"],
    nixBinDir: conf["remote-nix-bin-dir"],
    collectGarbage: conf["collect-garbage"],
    buildTimeout: buildLimits(ctx.settings).buildTimeout,
    paramsAttr: plan.paramsAttr,
    paramsAllow: conf["derivation-params-allow"],
    environment: conf["job-environment"],
    storeDir: conf["store-dir"],
    systemFeatures: [...new Set([...conf["system-features"], ...conf["mandatory-system-features"]])],
    pilotIdleSec: conf["pilot-idle-time"],
    pilotSlots: pilotSlots(conf["pilot-builds-per-job"], conf["pilot-idle-time"]),
    ...(startNotice ? { startNotice } : {}),
  });
}

export function storeDirOf(drvPath: string): string {
  return drvPath.slice(0, drvPath.lastIndexOf("/"));
}
