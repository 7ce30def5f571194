// Expected: a pending reason that no passing time or ending job can clear (a request the partition
// or a per-job limit can never satisfy, an invalid account or QOS) fails the build once it has
// persisted for the grace period, naming Slurm's reason; reasons that clear as the queue moves
// (Resources, Priority, per-user and group limits, a held or down partition) only wait, until
// max-queue-wait (when set) has passed, which fails the build naming the reason it waited for.
import { expect, test } from "bun:test";
import { NEVER_REASON_GRACE_MS, classifyPendingReason, neverSince, queueVerdict } from "../../src/schedulers/pending-reason.ts";

test.each([
  ["BadConstraints", "never"],
  ["PartitionConfig", "never"],
  ["PartitionNodeLimit", "never"],
  ["PartitionTimeLimit", "never"],
  ["InvalidAccount", "never"],
  ["InvalidQOS", "never"],
  ["AccountNotAllowed", "never"],
  ["QOSNotAllowed", "never"],
  ["DependencyNeverSatisfied", "never"],
  ["MaxMemPerLimit", "never"],
  ["QOSMaxCpuPerJobLimit", "never"],
  ["QOSMaxWallDurationPerJobLimit", "never"],
  ["QOSMaxMemoryPerJob", "never"],
  ["QOSMaxGRESPerNode", "never"],
  ["AssocMaxNodePerJobLimit", "never"],
  ["AssocMaxCpuMinutesPerJobLimit", "never"],
  ["QOSMinCpuNotSatisfied", "never"],
  ["QOSMinGRES", "never"],
  // clear by themselves: other jobs end, time passes, an administrator acts
  ["Resources", "wait"],
  ["Priority", "wait"],
  ["Dependency", "wait"],
  ["BeginTime", "wait"],
  ["None", "wait"],
  ["PartitionDown", "wait"],
  ["PartitionInactive", "wait"],
  ["JobHeldUser", "wait"],
  ["JobHeldAdmin", "wait"],
  ["ReqNodeNotAvail, UnavailableNodes:node[1-2]", "wait"],
  ["QOSMaxCpuPerUserLimit", "wait"],
  ["QOSMaxJobsPerUserLimit", "wait"],
  ["QOSMaxSubmitJobPerUserLimit", "wait"],
  ["AssocMaxJobsLimit", "wait"],
  ["AssocMaxSubmitJobLimit", "wait"],
  ["QOSGrpCpuLimit", "wait"],
  ["AssocGrpCPUMinutesLimit", "wait"],
  ["MaxCpuPerAccount", "wait"],
  ["AccountingPolicy", "wait"],
  ["SomeReasonOfAFutureSlurm", "wait"],
] as const)("%s: %s", (reason, kind) => {
  expect(classifyPendingReason(reason).kind).toBe(kind);
});

test("no reason: wait", () => {
  expect(classifyPendingReason(null).kind).toBe("wait");
});

const obs = (o: Partial<Parameters<typeof queueVerdict>[0]>) => queueVerdict({ jobId: "7", reason: "Resources", waitedMs: 0, neverForMs: 0, maxQueueWaitSec: 0, ...o });

test.each([
  ["waiting for resources, no bound", {}, undefined],
  ["waiting for resources for an hour, no bound", { waitedMs: 3600_000 }, undefined],
  ["a never-reason just seen", { reason: "PartitionConfig" }, undefined],
  ["a never-reason within the grace", { reason: "PartitionConfig", neverForMs: NEVER_REASON_GRACE_MS - 1 }, undefined],
  ["a never-reason past the grace", { reason: "PartitionConfig", neverForMs: NEVER_REASON_GRACE_MS }, /job 7 can never start.*PartitionConfig/],
  ["below max-queue-wait", { waitedMs: 9_999, maxQueueWaitSec: 10 }, undefined],
  ["at max-queue-wait", { waitedMs: 10_000, maxQueueWaitSec: 10, reason: "PartitionDown" }, /job 7 .*10 s \(max-queue-wait\).*PartitionDown/],
  ["max-queue-wait, Slurm gave no reason", { waitedMs: 10_000, maxQueueWaitSec: 10, reason: null }, /max-queue-wait/],
] as const)("%s", (_what, o, want) => {
  const v = obs(o as Partial<Parameters<typeof queueVerdict>[0]>);
  if (want === undefined) expect(v).toBeUndefined();
  else expect(v).toMatch(want);
});

test("neverSince keeps the first sighting of the same reason and forgets it when the reason changes", () => {
  const a = neverSince(undefined, true, "PartitionConfig", 1000);
  expect(a).toEqual({ reason: "PartitionConfig", since: 1000 });
  expect(neverSince(a, true, "PartitionConfig", 5000)).toEqual({ reason: "PartitionConfig", since: 1000 });
  expect(neverSince(a, true, "PartitionNodeLimit", 6000)).toEqual({ reason: "PartitionNodeLimit", since: 6000 });
  expect(neverSince(a, true, "Resources", 6000)).toBeUndefined();
  expect(neverSince(a, false, "PartitionConfig", 6000)).toBeUndefined();
});
