// A Scheduler put behind politeScheduler() is a good citizen of slurmctld, for all nsh processes of
// the machine together: submits and queries stay under the site's rate (scheduler-rate, split into
// a submit bucket and a query bucket so neither starves the other), job states come from the
// broker's one batched query per tick, cancels go out batched, a submit waits while this machine
// has max-queued-jobs queued, and a refusal that means "not now" (rate limit, too many jobs) waits
// and tries again instead of failing the build.
import type { NshConfig } from "../config/nsh-conf.ts";
import { jitteredDelay } from "../state/backoff.ts";
import type { StateDb } from "../state/db.ts";
import { JobWatchTable } from "../state/job-watch.ts";
import {
  parseRate, RateLimiter, RateLimitWaitTooLong, type RatePolicy, sleep, splitRate, type TakeOptions,
} from "../state/rate-limit.ts";
import { type BrokerOptions, JobBroker } from "./job-broker.ts";
import { classifyRefusal, retryRefusal } from "./refusal.ts";
import { type JobHandle, type JobSpec, type JobStatus, type Scheduler, SchedulerError } from "./scheduler.ts";

export interface PoliteOptions {
  db: StateDb;
  /** which scheduler this is, the same in every process talking to it (see endpointKey) */
  endpoint: string;
  /** all requests together (split by splitRate); null: no rate limit */
  rate: RatePolicy | null;
  /** this machine's nsh jobs pending in the queue at most; 0: no cap */
  maxQueuedJobs: number;
  /** how long a submit keeps retrying refusals that mean "not now"; default 30 min */
  maxRefusalWaitMs?: number;
  /** the first and the longest pause between two submits refused "not now" */
  refusalBaseMs?: number;
  refusalCapMs?: number;
  /** ends waits (the build was interrupted) */
  signal?: AbortSignal;
  log?: (line: string) => void;
  broker?: Omit<BrokerOptions, "limiter" | "log">;
}

export interface PoliteScheduler extends Scheduler {
  readonly broker: JobBroker;
  /** submits' bucket, and the broker's (queries, cancels); undefined without a rate limit */
  readonly limiters: { submit: RateLimiter; query: RateLimiter } | undefined;
  /** "go" when a submit now would not wait for the queue cap; "wait" lets a caller postpone the build instead */
  queueVerdict(): Promise<"go" | "wait">;
  /** The caller no longer needs these jobs' states. */
  unfollow(ids: string[]): Promise<void>;
  close(): void;
}

type EndpointSettings = "job-scheduler" | "slurm-api-scheme" | "slurm-api-host" | "slurm-api-port" | "slurm-user" | "slurm-bin-dir"
  | "slurm-cli-user" | "slurm-conf" | "slurm-native-user" | "pbs-host" | "pbs-port";

/** Pure: the key every process derives alike for the scheduler a config names (no secrets in it). */
export function endpointKey(c: Pick<NshConfig, EndpointSettings>): string {
  switch (c["job-scheduler"]) {
    case "slurm":
      return `slurm ${c["slurm-api-scheme"]}://${c["slurm-api-host"]}:${c["slurm-api-port"]} ${c["slurm-user"]}`;
    case "slurm-cli":
      return `slurm-cli ${c["slurm-bin-dir"]} ${c["slurm-cli-user"]}`;
    case "slurm-native":
      return `slurm-native ${c["slurm-conf"]} ${c["slurm-native-user"]}`;
    default:
      return `pbs ${c["pbs-host"]}:${c["pbs-port"]}`;
  }
}

/** politeScheduler's options from nsh.conf (scheduler-rate, max-queued-jobs); a clear error for a bad rate. */
export function politeOptionsFromConfig(c: NshConfig, db: StateDb, more: Partial<PoliteOptions> = {}): PoliteOptions {
  const rate = parseRate(c["scheduler-rate"]);
  if (!rate.ok) throw new SchedulerError("config", `nsh.conf: 'scheduler-rate' ${rate.error}`);
  return { db, endpoint: endpointKey(c), rate: rate.rate, maxQueuedJobs: c["max-queued-jobs"], ...more };
}

/** How long statusNow waits for the broker's answer before asking itself. */
const STATUS_NOW_DIRECT_MS = 150;

export function politeScheduler(inner: Scheduler, o: PoliteOptions): PoliteScheduler {
  const log = o.log ?? (() => {});
  const table = new JobWatchTable(o.db, o.endpoint);
  const budgets = o.rate ? splitRate(o.rate) : undefined;
  // Each may use the other's surplus above half its burst: a chain of single builds gets most of
  // the budget for its queries, a wide build most for its submits, and neither starves the other.
  const keys = { submit: `${o.endpoint} submit`, query: `${o.endpoint} query` };
  const sibling = (kind: "submit" | "query") => ({ key: keys[kind], policy: budgets![kind], keep: budgets![kind].burst / 2 });
  const limiters = budgets && {
    submit: new RateLimiter(o.db, keys.submit, budgets.submit, { sibling: sibling("query") }),
    query: new RateLimiter(o.db, keys.query, budgets.query, { sibling: sibling("submit") }),
  };
  const broker = new JobBroker(inner, table, { ...o.broker, ...(limiters ? { limiter: limiters.query } : {}), log });
  const take = (kind: "submit" | "query", more: TakeOptions = {}) =>
    limiters?.[kind].take(kind, { ...(o.signal ? { signal: o.signal } : {}), onWait: log, ...more });

  /** Waits for room under the queue cap; the slot's id, to release once the job is followed. */
  async function queueSlot(): Promise<number | undefined> {
    if (o.maxQueuedJobs <= 0) return undefined;
    let told = false;
    for (let n = 1; ; n++) {
      // Look without the write lock first: at the cap most looks find nothing changed.
      if (n === 1 || (await table.queued()) < o.maxQueuedJobs) {
        const r = await table.reserveSubmit(o.maxQueuedJobs);
        if (r.decision === "go") return r.id;
        if (!told) log(`nsh: waiting to submit: ${r.queued} of this machine's nsh jobs are queued (max-queued-jobs = ${o.maxQueuedJobs})`);
        told = true;
      }
      await sleep(jitteredDelay(n, 100, 2000, Math.random()), o.signal);
    }
  }

  async function submit(job: JobSpec): Promise<JobHandle> {
    const t0 = Date.now();
    const maxWait = o.maxRefusalWaitMs ?? 30 * 60_000;
    for (let attempt = 1; ; attempt++) {
      const slot = await queueSlot();
      try {
        await take("submit");
        const h = await inner.submit(job);
        // Followed before the slot is released, so the cap never misses it; the job exists either way.
        await broker.follow([h.id]).catch((e: unknown) => log(`nsh: job ${h.id}: not followed by the job broker: ${(e as Error).message}`));
        return h;
      } catch (e) {
        const r = classifyRefusal(e);
        const others = r === "policy" ? await table.active() : 0;
        if (!retryRefusal(r, others, Date.now() - t0, maxWait)) throw e;
        const pause = jitteredDelay(attempt, o.refusalBaseMs ?? 1000, o.refusalCapMs ?? 30_000, Math.random());
        log(`nsh: the scheduler refused the submit for now (${r}: ${(e as Error).message}); trying again in ${(pause / 1000).toFixed(1)} s`);
        await sleep(pause, o.signal);
      } finally {
        if (slot !== undefined) await table.releaseSubmit(slot);
      }
    }
  }

  /**
   * A job's start notice came: the broker's leader polls at once (this process, when it leads, in a
   * few ms). A leader that does not answer within STATUS_NOW_DIRECT_MS (another hook, waiting for the
   * state database's lock at width: 0.4-1.3 s in the 50-wide benchmark) is not waited for: one
   * request of our own, if a query token is spendable now. Without one the broker's poll answers:
   * it asks for all touched jobs in one request, while queued requests of our own went one per
   * token (50 jobs starting at once were seen running 1.2 s apart, the last after 20 s).
   */
  async function statusNow(id: string): Promise<JobStatus> {
    const viaBroker = broker.status(id, { fresh: true, now: true });
    viaBroker.catch(() => {});
    const quick = await Promise.race([viaBroker, sleep(STATUS_NOW_DIRECT_MS, o.signal).then(() => undefined)]);
    if (quick) return quick;
    try {
      await take("query", { maxWaitMs: 0 });
    } catch (e) {
      if (e instanceof RateLimitWaitTooLong) return await viaBroker;
      throw e;
    }
    return await inner.status(id);
  }

  const polite: PoliteScheduler = {
    kind: inner.kind,
    broker,
    limiters,
    ...(inner.requestTimeoutMs !== undefined ? { requestTimeoutMs: inner.requestTimeoutMs } : {}),
    submit,
    // A state seen since the call: a caller that asks again and again is paced by the broker's ticks.
    status: (id) => broker.status(id, { fresh: true }),
    statusNow,
    cancel: (id) => broker.cancel([id]),
    async statusMany(ids: string[]): Promise<Map<string, JobStatus>> {
      const all = await Promise.all(ids.map(async (id) => [id, await broker.status(id)] as const));
      return new Map(all);
    },
    cancelMany: (ids) => broker.cancel(ids),
    describe: () => {
      const rate = o.rate ? `${o.rate.burst} requests at once, ${o.rate.perSecond}/s` : "no rate limit";
      return `${inner.describe()} (polite: ${rate}${o.maxQueuedJobs > 0 ? `, at most ${o.maxQueuedJobs} queued` : ""})`;
    },
    async queueVerdict() {
      return o.maxQueuedJobs > 0 && (await table.queued()) >= o.maxQueuedJobs ? "wait" : "go";
    },
    unfollow: (ids) => broker.unfollow(ids),
    close: () => broker.close(),
  };
  if (inner.findTagged) {
    const find = inner.findTagged.bind(inner);
    polite.findTagged = async (tag) => (await take("query"), find(tag));
  }
  if (inner.prepare) {
    // Preparing may ask the scheduler (slurmrestd pings slurmctld): a query like any other, paid only
    // when it is sent (a hook that trusts an earlier hook's proof asks nothing).
    const prepare = inner.prepare.bind(inner);
    polite.prepare = (gate) => prepare(async () => (await take("query"), await gate?.()));
  }
  if (inner.doctor) polite.doctor = inner.doctor.bind(inner);
  return polite;
}
