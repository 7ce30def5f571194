// Expected: while the query budget runs low the job broker paces its polls (a pending job is asked
// about less often than every 100 ms), but statusNow (a job's start notice came) has the scheduler
// asked at once, under the same rate limit (by the broker's leader, or itself if the leader is slow),
// and does not wait for the broker's paced tick: the paced polls keep a token for it.
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { politeScheduler } from "../../src/schedulers/polite.ts";
import type { JobSpec, JobStatus, Scheduler } from "../../src/schedulers/scheduler.ts";
import { openStateDb } from "../../src/state/db.ts";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-polite-now-"));
const db = openStateDb(root);
afterAll(() => {
  db.close();
  fs.rmSync(root, { recursive: true, force: true });
});
const job: JobSpec = { name: "x", script: "#!/bin/sh\n", workingDirectory: "/", environment: {} };

test("statusNow answers at once under a low budget; status() waits for the paced tick", async () => {
  let state: JobStatus["state"] = "pending";
  const st = (id: string): JobStatus =>
    ({ id, state, rawState: [], reason: null, nodes: "n1", exitCode: null, signal: null, startTime: null, endTime: null });
  const inner: Scheduler = {
    kind: "slurm",
    describe: () => "pending",
    submit: async () => ({ id: "5" }),
    status: async (id) => st(id),
    cancel: async () => {},
    statusMany: async (ids) => new Map(ids.map((id) => [id, st(id)])),
  };
  // 8 requests at once, 0.4/s: 4 query tokens (one back every 5.6 s), 4 for submits.
  const s = politeScheduler(inner, { db, endpoint: "now", rate: { burst: 8, perSecond: 0.4 }, maxQueuedJobs: 0 });
  try {
    const { id } = await s.submit(job);
    // Spend the query budget down to its reserve: the broker then paces its polls seconds apart.
    while ((await s.limiters!.query.available()) >= 2) await s.status(id);
    await Bun.sleep(20); // the last answer is older than the next question
    const t1 = Date.now();
    const paced = await s.status(id);
    const pacedMs = Date.now() - t1;
    expect(paced.state).toBe("pending");
    state = "running";
    const t0 = Date.now();
    const now = await s.statusNow!(id);
    const nowMs = Date.now() - t0;
    console.log(`the broker's paced status() answered in ${pacedMs} ms, statusNow in ${nowMs} ms`);
    expect(now.state).toBe("running");
    expect(nowMs).toBeLessThan(500);
    expect(pacedMs).toBeGreaterThan(nowMs + 1000);
  } finally {
    s.close();
  }
}, 60_000);
