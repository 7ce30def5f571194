// Expected: a job's start notice asks the broker for a state from after the notice (status with
// `now`). A poll stamped in the same millisecond as that question, or later, but asked before it
// (it may have found the job still pending) does not answer it: the reader gets the state of a
// poll that saw its question. CI saw the stale answer: statusNow said "pending" for a running job.
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { JobBroker } from "../../src/schedulers/job-broker.ts";
import type { JobStatus, Scheduler } from "../../src/schedulers/scheduler.ts";
import { openStateDb } from "../../src/state/db.ts";
import { jobPollDelay, JobWatchTable } from "../../src/state/job-watch.ts";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-broker-ms-"));
const db = openStateDb(root);
afterAll(() => {
  db.close();
  fs.rmSync(root, { recursive: true, force: true });
});

const status = (id: string, state: JobStatus["state"]): JobStatus =>
  ({ id, state, rawState: [], reason: null, nodes: "n1", exitCode: null, signal: null, startTime: null, endTime: null });
const update = (id: string, state: JobStatus["state"], seenChangedAt?: number | null) => ({
  id, state, done: false, status: JSON.stringify(status(id, state)),
  ...(seenChangedAt !== undefined ? { seenChangedAt } : {}),
});

test("a touch in the poll's millisecond is answered only by a poll that saw it", async () => {
  const table = new JobWatchTable(db, "same-ms");
  const t = 1_000_000;
  await table.follow(["1"], t - 10);
  await table.record([update("1", "pending")], t);
  const mark = (await table.touch(["1"], t)).get("1")!;
  expect(mark).toBeGreaterThan(t);

  // A poll asked in the same millisecond, from rows read before the touch: not an answer.
  const before = (await table.rows(["1"]))[0]!;
  await table.record([update("1", "pending", t - 10)], t);
  let row = (await table.rows(["1"]))[0]!;
  expect(row.checked_at!).toBeLessThan(mark);
  expect(jobPollDelay(row, t, 5000)).toBe(0); // still touched: the leader polls again at once
  expect(before.changed_at).toBe(mark);

  // A poll from rows that show the touch, asked in that same millisecond: the answer.
  await table.record([update("1", "running", row.changed_at)], t);
  row = (await table.rows(["1"]))[0]!;
  expect(row.checked_at!).toBeGreaterThanOrEqual(mark);
  expect(row.state).toBe("running");
  expect(jobPollDelay(row, t, 5000)).toBeGreaterThan(0); // answered: no longer touched
});

test("status with `now` does not take a state recorded at or after the question but asked before it", async () => {
  let state: JobStatus["state"] = "pending";
  let polls = 0;
  const inner: Scheduler = {
    kind: "slurm",
    describe: () => "ms",
    submit: async () => ({ id: "2" }),
    status: async (id) => status(id, state),
    cancel: async () => {},
    statusMany: async (ids) => (polls++, new Map(ids.map((id) => [id, status(id, state)]))),
  };
  const table = new JobWatchTable(db, "broker-ms");
  const broker = new JobBroker(inner, table);
  try {
    expect((await broker.status("2")).state).toBe("pending");
    // A poll that found "pending", stamped 50 ms from now (clocks of two processes, or the same ms).
    await table.record([update("2", "pending")], Date.now() + 50);
    state = "running";
    const seen = polls;
    const got = await broker.status("2", { fresh: true, now: true });
    expect(got.state).toBe("running");
    expect(polls).toBeGreaterThan(seen);
  } finally {
    broker.close();
  }
});
