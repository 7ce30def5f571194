// What the main thread and libslurm's thread (slurm-native-worker.ts) say to each other. Pure.
import type { SchedulerErrorKind } from "./scheduler.ts";

export interface ThreadRequest {
  id: number;
  /** which scheduler of this process (each has its own options) */
  scheduler: number;
  method: string;
  args: unknown[];
}

export type ThreadReply =
  | { id: number; value: unknown; scheduler: number; describe: string }
  | { id: number; error: { message: string; kind?: SchedulerErrorKind; details?: string[] } }
  | { log: string; scheduler: number };

/** Maps do not survive every structured clone the same way: sent as entries, tagged. */
export const toWire = (v: unknown): unknown => (v instanceof Map ? { $map: [...v.entries()] } : v);

export const fromWire = (v: unknown): unknown =>
  v !== null && typeof v === "object" && "$map" in v ? new Map((v as { $map: [unknown, unknown][] }).$map) : v;
