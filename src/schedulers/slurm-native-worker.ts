// The thread that owns libslurm (slurm-native-thread.ts starts it): libslurm's calls block their
// thread for up to MessageTimeout while slurmctld is slow or down, and here that is not the hook's
// main thread, so ssh streams and log relaying go on meanwhile. One request at a time, in order:
// { id, method, args } → { id, value } or { id, error }; the scheduler's log lines as { log }.
import { SchedulerError } from "./scheduler.ts";
import { SlurmNativeScheduler, type SlurmNativeOptions } from "./slurm-native.ts";
import { type ThreadReply, type ThreadRequest, toWire } from "./slurm-native-thread-wire.ts";

declare const self: Worker;

const schedulers = new Map<number, SlurmNativeScheduler>();
let queue: Promise<void> = Promise.resolve();

function reply(r: ThreadReply): void {
  postMessage(r);
}

async function handle(req: ThreadRequest): Promise<void> {
  try {
    if (req.method === "create") {
      const o = req.args[0] as Omit<SlurmNativeOptions, "log">;
      const made = new SlurmNativeScheduler({ ...o, log: (line) => reply({ log: line, scheduler: req.scheduler }) });
      schedulers.set(req.scheduler, made);
      return reply({ id: req.id, value: null, scheduler: req.scheduler, describe: made.describe() });
    }
    const s = schedulers.get(req.scheduler);
    if (!s) throw new SchedulerError("protocol", `slurm-native thread: no scheduler ${req.scheduler}`);
    const fn = (s as unknown as Record<string, (...a: unknown[]) => unknown>)[req.method];
    if (typeof fn !== "function") throw new SchedulerError("protocol", `slurm-native thread: no method ${req.method}`);
    const value = await fn.apply(s, req.args);
    reply({ id: req.id, value: toWire(value), scheduler: req.scheduler, describe: s.describe() });
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    const kind = e instanceof SchedulerError ? e.kind : undefined;
    const details = e instanceof SchedulerError ? e.details : undefined;
    reply({ id: req.id, error: { message: err.message, ...(kind ? { kind } : {}), ...(details ? { details } : {}) } });
  }
}

self.onmessage = (e: MessageEvent<ThreadRequest>) => {
  queue = queue.then(() => handle(e.data));
};
