// Pure: which pilot job may serve a build. A pilot serves only builds whose job would have been
// the same job: the same scheduler endpoint and the same spec (script, environment, time limit,
// per-derivation parameters), apart from what names one build (its key, directory, name, tag).
import { createHash } from "node:crypto";
import type { JobSpec } from "../schedulers/scheduler.ts";

/** The environment variable that only names the build's derivation (informative, not a resource). */
const PER_BUILD_ENV = ["NSH_JOB_DRV"];

export function pilotResourceKey(endpoint: string, spec: JobSpec, jobDir: string, slots = 1): string {
  const unnamed = (s: string | undefined) => s?.split(jobDir).join("<job-dir>");
  const shaping = Object.entries(spec.environment ?? {}).filter(([k]) => !PER_BUILD_ENV.includes(k));
  const environment = Object.fromEntries(shaping.sort());
  const shape = {
    endpoint,
    script: unnamed(spec.script),
    workingDirectory: unnamed(spec.workingDirectory),
    environment,
    stdout: unnamed(spec.stdout),
    stderr: unnamed(spec.stderr),
    timeLimitMinutes: spec.timeLimitMinutes ?? null,
    extra: spec.extra ?? null,
    // pilot-builds-per-job: a job of K slots serves only builds that asked for K (1: as before it existed)
    ...(slots > 1 ? { slots } : {}),
  };
  return createHash("sha256").update(JSON.stringify(shape)).digest("hex");
}

/** What a build may need of a pilot's remaining time: its job's time limit (0: none asked). */
export const pilotNeedMs = (spec: JobSpec): number => (spec.timeLimitMinutes ?? 0) * 60_000;

/** When a job's time limit ends it (epoch ms), from its start and limit; null when unknown or unlimited. */
export function pilotEndsAt(startTime: number | null, timeLimitMinutes: number | null | undefined): number | null {
  if (startTime === null || !timeLimitMinutes) return null;
  return (startTime + timeLimitMinutes * 60) * 1000;
}

/** Until when a pilot just released is sure to wait: its idle time, less a margin for clocks and the hook's ssh. */
export const pilotIdleUntil = (nowMs: number, idleSec: number, marginMs: number): number => nowMs + idleSec * 1000 - marginMs;
