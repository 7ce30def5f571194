// Expected: when the broker's batched query fails once (slurmrestd restarting, a timeout), the
// builds following those jobs keep their last known state and go on; only a failure that lasts
// (here: longer than errorAfterMs) reaches them, as the scheduler's own error. A job whose very
// first query fails gets the error at once, as asking the scheduler directly would.
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { JobBroker } from "../../src/schedulers/job-broker.ts";
import { type JobStatus, type Scheduler, SchedulerError } from "../../src/schedulers/scheduler.ts";
import { openStateDb } from "../../src/state/db.ts";
import { JobWatchTable } from "../../src/state/job-watch.ts";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-broker-fail-"));
const db = openStateDb(root);
afterAll(() => {
  db.close();
  fs.rmSync(root, { recursive: true, force: true });
});

const running = (id: string): JobStatus => ({ id, state: "running", rawState: ["RUNNING"], reason: null, nodes: "n1", exitCode: null, signal: null, startTime: 1, endTime: null });

/** statusMany answers, then fails from call `failFrom` on (for `failures` calls; Infinity: for good). */
function flaky(failFrom: number, failures: number): Scheduler & { calls: number } {
  const s = {
    kind: "slurm" as const,
    calls: 0,
    describe: () => "flaky",
    submit: async () => ({ id: "1" }),
    status: async (id: string) => running(id),
    cancel: async () => {},
    async statusMany(ids: string[]) {
      const n = ++s.calls;
      if (n >= failFrom && n < failFrom + failures) throw new SchedulerError("timeout", "slurmrestd at h:1 did not answer GET /slurm/v0.0.38/jobs within 20000 ms");
      return new Map(ids.map((id) => [id, running(id)]));
    },
  };
  return s;
}

test("one failed query: followers keep the last state", async () => {
  const inner = flaky(2, 1);
  const broker = new JobBroker(inner, new JobWatchTable(db, "blip"), { errorAfterMs: 60_000 });
  expect((await broker.status("7")).state).toBe("running");
  while (inner.calls < 4) {
    expect((await broker.status("7")).state).toBe("running");
    await Bun.sleep(20);
  }
  broker.close();
});

test("a lasting failure reaches the follower once the last state is older than errorAfterMs", async () => {
  const inner = flaky(2, Infinity);
  const broker = new JobBroker(inner, new JobWatchTable(db, "lasting"), { errorAfterMs: 300 });
  expect((await broker.status("8")).state).toBe("running");
  let err: unknown;
  for (let i = 0; i < 500 && !err; i++) {
    await broker.status("8").catch((e: unknown) => (err = e));
    await Bun.sleep(20);
  }
  expect(err).toBeInstanceOf(SchedulerError);
  expect((err as SchedulerError).kind).toBe("timeout");
  broker.close();
});

test("the first query failing: the error at once", async () => {
  const broker = new JobBroker(flaky(1, Infinity), new JobWatchTable(db, "first"), { errorAfterMs: 60_000 });
  await expect(broker.status("9")).rejects.toThrow("did not answer");
  broker.close();
});
