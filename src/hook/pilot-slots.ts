// Pure: a pilot job with several slots (pilot-builds-per-job = K > 1). The job asks for K times one
// build's CPUs (and memory, when the build asks for memory) and its script starts K agents, each an
// ordinary pilot agent with its own directory (slot 0: the job's directory, the submitting build's;
// slot i: a subdirectory), socket, log and idle timer. The script waits for all of them: the job
// ends when the last one has left. Slots other than 0 wait only pilot-idle-time for a first build.
import path from "node:path";
import { shellQuote } from "../remote/ssh.ts";
import type { JsonObject, JsonValue } from "../schedulers/scheduler.ts";

/** pilot-builds-per-job as used: at least 1, and 1 without pilots. */
export const pilotSlots = (perJob: number, idleSec: number): number => (idleSec > 0 ? Math.max(1, Math.floor(perJob)) : 1);

/** Where slot i's agent listens: slot 0 in the job's directory, the others in a subdirectory of it. */
export const slotDir = (jobDir: string, slot: number): string => (slot === 0 ? jobDir : path.posix.join(jobDir, `s${slot}`));

/** The batch script of a K-slot job: K agents in the background, then wait for them all (sh builtins only). */
export function slotsScript(agentPath: string, argsOfSlot: readonly (readonly string[])[]): string {
  return [
    "#!/bin/sh",
    `# nsh pilot job with ${argsOfSlot.length} slots: one nsh agent per slot, each serving one build at a time.`,
    ...argsOfSlot.map((args) => `${[agentPath, ...args].map(shellQuote).join(" ")} &`),
    "wait",
    "",
  ].join("\n");
}

/** "8G", "512M", 4096, "2gb" → the same amount times k, in the same unit; undefined when not a plain amount. */
function scaleAmount(value: JsonValue | undefined, k: number): JsonValue | undefined {
  if (typeof value === "number") return Number.isFinite(value) && value > 0 ? value * k : undefined;
  if (typeof value !== "string") return undefined;
  const m = /^\s*(\d+)\s*([a-z]*)\s*$/i.exec(value);
  return m ? `${Number(m[1]) * k}${m[2]}` : undefined;
}

/** Per parameters attribute: the key of the CPU count (default 1) and the keys of memory per job/node. */
const SIZE_KEYS: Record<string, { cpus: string; memory: readonly string[] }> = {
  extraSlurmParams: { cpus: "cpus_per_task", memory: ["memory_per_node"] },
  slurmNativeConstraints: { cpus: "cpus", memory: ["memPerNode"] },
  pbsResources: { cpus: "ncpus", memory: ["mem", "vmem"] },
};

/**
 * One build's scheduler parameters → the K-slot job's: CPUs times K (one if the build asks for
 * none), memory per node times K when the build asks for it (memory per CPU grows with the CPUs).
 * A value nsh cannot read as an amount is left as it is. PBS takes resource values as text.
 */
export function scaleForSlots(extra: JsonObject | undefined, paramsAttr: string, k: number): JsonObject | undefined {
  const keys = SIZE_KEYS[paramsAttr];
  if (k <= 1 || !keys) return extra;
  const out: JsonObject = { ...extra };
  const cpus = scaleAmount(out[keys.cpus] ?? 1, k);
  if (cpus !== undefined) out[keys.cpus] = paramsAttr === "pbsResources" ? String(cpus) : cpus;
  for (const key of keys.memory) {
    const mem = scaleAmount(out[key], k);
    if (mem !== undefined) out[key] = mem;
  }
  return out;
}
