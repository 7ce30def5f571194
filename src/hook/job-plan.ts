// Pure: what a build's job looks like — its directory, script, spec, the agent's place — and the
// small parsers the job's life needs (hostlists, derivation attributes, Nix's own time limits).
import path from "node:path";
import type { Derivation } from "../nix/derivation.ts";
import { agentArgs } from "../agent/protocol.ts";
import { START_NOTICE_ENV } from "../agent/start-notice.ts";
import type { JobSpec, JsonObject } from "../schedulers/scheduler.ts";
import { shellQuote } from "../remote/ssh.ts";
import { jobTimeLimitMinutes } from "./job-end.ts";
import { allowList, refusalMessage, refusedKeys } from "./derivation-params.ts";
import { scaleForSlots, slotDir, slotsScript } from "./pilot-slots.ts";

export class DerivationAttrError extends Error {}

/** `/nix/store/<hash>-hello-2.12.drv` → `hello-2.12` */
export function drvName(drvPath: string): string {
  return path.basename(drvPath).replace(/^[0-9a-z]{32}-/, "").replace(/\.drv$/, "");
}

/** The agent binary's place in the shared state directory, keyed by the binary's hash. */
export function agentBinaryPath(stateDir: string, hash: string): string {
  return path.posix.join(stateDir, "bin", `nsh-${hash.slice(0, 16)}`);
}

export function jobDir(stateDir: string, key: string): string {
  return path.posix.join(stateDir, "jobs", key);
}

export interface JobPlanInput {
  drvPath: string;
  drv: Derivation;
  stateDir: string;
  key: string;
  agentPath: string;
  remoteStore: string;
  nixBinDir: string;
  collectGarbage: boolean;
  /** Nix's `timeout` setting (seconds, 0 = none): the job's time limit is that plus a margin (job-end.ts). */
  buildTimeout: number;
  /** The derivation-level parameters attribute, e.g. extraSlurmParams. */
  paramsAttr: string;
  /** derivation-params-allow: which of its keys may reach the job (default: the attribute's built-in list). */
  paramsAllow?: readonly string[];
  /** job-environment: NAME=VALUE words. */
  environment?: readonly string[];
  /** store-dir: the logical store directory on the cluster. */
  storeDir?: string;
  /** system-features and mandatory-system-features: what the node's Nix must accept. */
  systemFeatures?: string[];
  /** pilot-idle-time: the agent stays this many seconds for further builds (0: off) */
  pilotIdleSec?: number;
  /** pilot-builds-per-job: slots (agents) in the job, each for one build at a time (pilot-slots.ts) */
  pilotSlots?: number;
  /** NSH_START_NOTICE for the agent: where it tells the hook that the job started */
  startNotice?: string;
}

/** job-environment words → a map; a word without '=' is an error naming it. */
export function parseJobEnvironment(words: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const w of words) {
    const eq = w.indexOf("=");
    if (eq <= 0) throw new Error(`nsh.conf: job-environment expects NAME=VALUE words, got '${w}'`);
    out[w.slice(0, eq)] = w.slice(eq + 1);
  }
  return out;
}

/** A derivation attribute that holds a JSON object (extraSlurmParams, pbsResources). */
export function jsonObjectAttr(drv: Derivation, drvPath: string, attr: string): JsonObject | undefined {
  const text = drv.env.get(attr);
  if (text === undefined || text.trim() === "") return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new DerivationAttrError(`${drvPath}: attribute ${attr} is not valid JSON (${(e as Error).message}): ${text.slice(0, 80)}`);
  }
  if (!v || typeof v !== "object" || Array.isArray(v)) {
    throw new DerivationAttrError(`${drvPath}: attribute ${attr} must be a JSON object, got ${text.slice(0, 80)}`);
  }
  return v as JsonObject;
}

/**
 * The derivation's parameters attribute, parsed and checked against derivation-params-allow: a key
 * the list does not allow is the derivation's fault and fails its build before anything is submitted.
 */
export function derivationParams(
  drv: Derivation,
  drvPath: string,
  attr: string,
  allowWords?: readonly string[],
): JsonObject | undefined {
  const params = jsonObjectAttr(drv, drvPath, attr);
  const refused = params ? refusedKeys(params, allowList(attr, allowWords)) : [];
  if (refused.length > 0) throw new DerivationAttrError(refusalMessage(drvPath, attr, refused));
  return params;
}

/** The batch script: nothing but the agent (the job's PATH may hold no tools at all). */
export function jobScript(agentPath: string, args: readonly string[]): string {
  return [
    "#!/bin/sh",
    "# nsh build job: nsh's agent receives the inputs, builds inside this job and hands back the outputs.",
    `exec ${[agentPath, ...args].map(shellQuote).join(" ")}`,
    "",
  ].join("\n");
}

/** The mark a build's job carries (JobSpec.tag), from its record key: how a reaper finds it. */
export const jobTag = (key: string) => `nsh:${key}`;

/** Slurm's output file of a job: next to its directory, in a directory that exists before the job. */
export const jobOutputFile = (jobDir: string) => `${jobDir}.out`;

export function jobSpec(p: JobPlanInput): JobSpec {
  const dir = jobDir(p.stateDir, p.key);
  const slots = p.pilotSlots && p.pilotSlots > 1 ? p.pilotSlots : 1;
  const argsOf = (slot: number) => agentArgs({
    jobDir: slotDir(dir, slot), remoteStore: p.remoteStore, nixBinDir: p.nixBinDir || undefined,
    collectGarbage: p.collectGarbage, systemFeatures: p.systemFeatures, pilotIdleSec: p.pilotIdleSec,
    // A slot no build has taken yet leaves after the idle time, like a slot whose build is over.
    ...(slot > 0 ? { firstContactSec: p.pilotIdleSec } : {}),
  });
  const script = slots === 1 ? jobScript(p.agentPath, argsOf(0)) : slotsScript(p.agentPath, [...Array(slots).keys()].map(argsOf));
  return {
    name: `nsh-${drvName(p.drvPath)}`.slice(0, 200),
    tag: jobTag(p.key),
    script,
    // The agent makes its own directory (a hook that knows the agent is in place submits before
    // its ssh check has made it), so the job starts in the parent and Slurm writes beside it.
    workingDirectory: path.posix.dirname(dir),
    environment: {
      PATH: "/usr/local/bin:/usr/bin:/bin",
      ...(p.storeDir && p.storeDir !== "/nix/store" ? { NIX_STORE_DIR: p.storeDir } : {}),
      ...parseJobEnvironment(p.environment ?? []),
      NSH_JOB_DRV: p.drvPath,
      ...(p.startNotice ? { [START_NOTICE_ENV]: p.startNotice } : {}),
    },
    stdout: jobOutputFile(dir),
    stderr: jobOutputFile(dir),
    ...(() => {
      const minutes = jobTimeLimitMinutes(p.buildTimeout);
      return minutes === undefined ? {} : { timeLimitMinutes: minutes };
    })(),
    ...(() => {
      const extra = scaleForSlots(derivationParams(p.drv, p.drvPath, p.paramsAttr, p.paramsAllow), p.paramsAttr, slots);
      return extra ? { extra } : {};
    })(),
  };
}

/** First host of a Slurm hostlist: "node[3-5,9],gpu1" → "node3". */
export function firstHost(list: string): string | undefined {
  const m = /^([^,[]+)(?:\[([^\]]+)\])?/.exec(list.trim());
  if (!m) return undefined;
  const range = m[2]?.split(",")[0]?.split("-")[0];
  return range === undefined ? m[1] : `${m[1]}${range}`;
}

/** Nix's settings that bound a build, from the hook's settings blob. */
export function buildLimits(settings: ReadonlyMap<string, string>): { maxSilentTime: number; buildTimeout: number; maxLogSize: number } {
  const n = (k: string) => {
    const v = Number(settings.get(k) ?? 0);
    return Number.isFinite(v) && v > 0 ? Math.floor(v) : 0;
  };
  return { maxSilentTime: n("max-silent-time"), buildTimeout: n("timeout"), maxLogSize: n("max-build-log-size") };
}
