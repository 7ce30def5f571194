// Expected: with max-queued-jobs = 2, queueVerdict() says "go" while fewer than 2 of this machine's
// jobs are pending and "wait" once 2 are (so the hook can postpone a build instead of submitting);
// a third submit waits until one of them leaves the queue, then goes; with no cap it is always "go".
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { politeScheduler } from "../../src/schedulers/polite.ts";
import type { JobSpec, JobState, Scheduler } from "../../src/schedulers/scheduler.ts";
import { openStateDb } from "../../src/state/db.ts";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-polite-cap-"));
const db = openStateDb(root);
afterAll(() => {
  db.close();
  fs.rmSync(root, { recursive: true, force: true });
});
const job: JobSpec = { name: "x", script: "#!/bin/sh\n", workingDirectory: "/", environment: {} };

/** Jobs stay pending until started by the test. */
function manual(): Scheduler & { states: Map<string, JobState> } {
  const states = new Map<string, JobState>();
  let n = 0;
  const st = (id: string) => ({ id, state: states.get(id) ?? "unknown", rawState: [], reason: null, nodes: null, exitCode: null, signal: null, startTime: null, endTime: null });
  return {
    kind: "slurm",
    states,
    describe: () => "manual",
    async submit() {
      const id = String(++n);
      states.set(id, "pending");
      return { id };
    },
    status: async (id) => st(id),
    cancel: async () => {},
    statusMany: async (ids) => new Map(ids.map((id) => [id, st(id)])),
  };
}

test("cap 2: go, go, then wait; a third submit goes once a job starts", async () => {
  const inner = manual();
  const s = politeScheduler(inner, { db, endpoint: "cap", rate: null, maxQueuedJobs: 2 });
  expect(await s.queueVerdict()).toBe("go");
  await s.submit(job);
  expect(await s.queueVerdict()).toBe("go");
  await s.submit(job);
  expect(await s.queueVerdict()).toBe("wait");
  let third = false;
  const p = s.submit(job).then((h) => ((third = true), h));
  await Bun.sleep(1000);
  expect(third).toBe(false);
  inner.states.set("1", "running");
  expect(await p).toEqual({ id: "3" });
  for (const id of ["1", "2", "3"]) inner.states.set(id, "completed");
  while ((await s.status("3")).state !== "completed") await Bun.sleep(20);
  expect(await s.queueVerdict()).toBe("go");
  s.close();
});

test("no cap: always go", async () => {
  const s = politeScheduler(manual(), { db, endpoint: "nocap", rate: null, maxQueuedJobs: 0 });
  for (let i = 0; i < 5; i++) await s.submit(job);
  expect(await s.queueVerdict()).toBe("go");
  s.close();
});
