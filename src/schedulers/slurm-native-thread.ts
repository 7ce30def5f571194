// slurm-native as the hook uses it: the same scheduler (slurm-native.ts), run on a thread of its own
// (slurm-native-worker.ts) so that libslurm's blocking calls (9–18 s each with slurmctld down) do
// not stall the hook's main thread. One worker per process, because libslurm is initialised once
// per process; it is unref'd, so it never keeps a finished process alive.
import type { DoctorCheck, JobHandle, JobSpec, JobStatus, Scheduler } from "./scheduler.ts";
import { SchedulerError } from "./scheduler.ts";
import type { NshConfig } from "../config/nsh-conf.ts";
import { nativeOptions, type SlurmNativeOptions } from "./slurm-native.ts";
import { fromWire, type ThreadReply, type ThreadRequest } from "./slurm-native-thread-wire.ts";

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

let worker: Worker | null = null;
let nextId = 1;
let nextScheduler = 1;
const pending = new Map<number, Pending>();
const loggers = new Map<number, (line: string) => void>();
const describes = new Map<number, string>();

/**
 * The worker's module. In the compiled binary (build.ts lists it as an entry point) entry points keep
 * their place under src/ in Bun's embedded file system while split chunks, this code among them, sit
 * at its root: there the worker is schedulers/slurm-native-worker.ts from the root.
 */
function workerUrl(): URL {
  const here = new URL("./slurm-native-worker.ts", import.meta.url);
  const embedded = /^.*\/\$bunfs\/root\//.exec(here.href);
  return embedded ? new URL("schedulers/slurm-native-worker.ts", embedded[0]) : here;
}

function thread(): Worker {
  if (worker) return worker;
  const w = new Worker(workerUrl());
  w.onmessage = (e: MessageEvent<ThreadReply>) => {
    const r = e.data;
    if ("log" in r) return loggers.get(r.scheduler)?.(r.log);
    const p = pending.get(r.id);
    pending.delete(r.id);
    if (pending.size === 0) w.unref();
    if (!p) return;
    if ("error" in r) {
      const { message, kind, details } = r.error;
      p.reject(kind ? new SchedulerError(kind, message, details ?? []) : new Error(message));
    } else {
      describes.set(r.scheduler, r.describe);
      p.resolve(r.value);
    }
  };
  w.onerror = (e) => {
    const err = new SchedulerError("protocol", `slurm-native thread failed: ${e.message}`);
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };
  w.unref();
  worker = w;
  return w;
}

function call(scheduler: number, method: string, args: unknown[] = []): Promise<unknown> {
  const w = thread();
  const id = nextId++;
  const req: ThreadRequest = { id, scheduler, method, args };
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    w.ref(); // a call under way keeps the process alive until its answer
    w.postMessage(req);
  }).then((v) => fromWire(v));
}

export class SlurmNativeThreaded implements Scheduler {
  readonly kind = "slurm-native" as const;
  private readonly n = nextScheduler++;
  private readonly created: Promise<unknown>;

  /** nsh.conf's settings, as SlurmNativeScheduler.fromConfig reads them. */
  static fromConfig(conf: NshConfig, env: Record<string, string | undefined>, log?: (line: string) => void) {
    return new SlurmNativeThreaded({ ...nativeOptions(conf, { ...env }), ...(log ? { log } : {}) });
  }

  constructor(o: SlurmNativeOptions) {
    const { log, ...rest } = o;
    if (log) loggers.set(this.n, log);
    describes.set(this.n, "slurm-native via libslurm (not loaded yet)");
    this.created = call(this.n, "create", [rest]);
    this.created.catch(() => {}); // said by the first call that awaits it
  }

  private async run<T>(method: string, ...args: unknown[]): Promise<T> {
    await this.created;
    return (await call(this.n, method, args)) as T;
  }

  describe(): string {
    return describes.get(this.n)!;
  }
  prepare = () => this.run<void>("prepare");
  submit = (job: JobSpec) => this.run<JobHandle>("submit", job);
  status = (id: string) => this.run<JobStatus>("status", id);
  statusMany = (ids: string[]) => this.run<Map<string, JobStatus>>("statusMany", ids);
  cancel = (id: string) => this.run<void>("cancel", id);
  cancelMany = (ids: string[]) => this.run<void>("cancelMany", ids);
  findTagged = (tag: string) => this.run<string[]>("findTagged", tag);
  doctor = () => this.run<DoctorCheck[]>("doctor");
}
