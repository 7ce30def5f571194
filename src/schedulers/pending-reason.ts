// Why a pending job waits, and whether waiting can ever end. Slurm keeps a job PENDING forever when
// its request can never be met (a feature no node has, more CPUs or nodes than its partition has, an
// invalid account, a per-job limit the job itself exceeds); only the user or an administrator can
// change that. Such a build must fail with Slurm's reason, not wait. Pure: the hook's wait loop
// asks `queueVerdict` after each status poll. Reason names: Slurm's job_state_reason_string().

/** Reasons that no other job's ending, no time passing, can clear. */
const NEVER: Record<string, string> = {
  BadConstraints: "no node can satisfy the job's constraints (features, memory, CPUs)",
  Constraints: "no node can satisfy the job's constraints",
  PartitionConfig: "the job asks for more than its partition's configuration offers (CPUs, memory, GRES)",
  PartitionNodeLimit: "the job asks for more nodes than its partition allows or has",
  PartitionTimeLimit: "the job's time limit exceeds its partition's MaxTime",
  InvalidAccount: "the job's account is invalid",
  InvalidQOS: "the job's QOS is invalid",
  AccountNotAllowed: "the job's account may not use its partition",
  QOSNotAllowed: "the job's QOS may not be used in its partition",
  DependencyNeverSatisfied: "the job depends on a job that can no longer satisfy it",
  ReservationDeleted: "the job's reservation was deleted",
  ReservationInvalid: "the job's reservation is invalid",
  MaxMemPerLimit: "the job's memory per node or CPU exceeds the limit (MaxMemPerNode/MaxMemPerCPU)",
  JobHoldMaxRequeue: "the job was requeued too often and is held",
};

/**
 * A limit the job's own request exceeds (per job, per node, or below a minimum): it stays exceeded
 * however the queue empties. Per-user, per-account and group (Grp) limits clear as other jobs end.
 */
const NEVER_LIMIT = /^(QOS|Assoc)Max\w*Per(Job|Node)(Limit)?$|^QOSMin\w+$/;

export type ReasonKind = { kind: "wait" } | { kind: "never"; why: string };

export function classifyPendingReason(reason: string | null): ReasonKind {
  if (!reason) return { kind: "wait" };
  // Slurm may append details ("ReqNodeNotAvail, UnavailableNodes:…"): the first word decides.
  const word = reason.split(/[,\s(]/)[0]!;
  const why = NEVER[word];
  if (why) return { kind: "never", why };
  if (NEVER_LIMIT.test(word)) {
    return { kind: "never", why: "the job's request exceeds a per-job limit of its QOS or association" };
  }
  return { kind: "wait" };
}

/**
 * How long a never-clearing reason must persist before the build fails: slurmctld re-evaluates a
 * reason on each scheduling pass, and an administrator's fix in flight should not race one poll.
 */
export const NEVER_REASON_GRACE_MS = 5000;

/** Since when the job has been pending for the same never-clearing reason (undefined: it is not). */
type Sighting = { reason: string; since: number };
export function neverSince(prev: Sighting | undefined, pending: boolean, reason: string | null, now: number): Sighting | undefined {
  if (!pending || !reason || classifyPendingReason(reason).kind !== "never") return undefined;
  return prev?.reason === reason ? prev : { reason, since: now };
}

export interface QueueObservation {
  jobId: string;
  /** Slurm's state_reason now (null: none) */
  reason: string | null;
  /** since the submit */
  waitedMs: number;
  /** since this same never-clearing reason was first seen (0 if just now or not such a reason) */
  neverForMs: number;
  /** max-queue-wait in seconds; 0: no bound */
  maxQueueWaitSec: number;
}

/** undefined: keep waiting; else why the build fails (the job is then cancelled). */
export function queueVerdict(o: QueueObservation): string | undefined {
  const r = classifyPendingReason(o.reason);
  if (r.kind === "never" && o.neverForMs >= NEVER_REASON_GRACE_MS) {
    return (
      `job ${o.jobId} can never start: Slurm keeps it pending for ${o.reason} (${r.why}); ` +
      "change the derivation's or nsh.conf's Slurm parameters"
    );
  }
  if (o.maxQueueWaitSec > 0 && o.waitedMs >= o.maxQueueWaitSec * 1000) {
    const why = o.reason ?? "no reason given by Slurm";
    return `job ${o.jobId} was still pending after ${o.maxQueueWaitSec} s (max-queue-wait), waiting for ${why}`;
  }
  return undefined;
}
