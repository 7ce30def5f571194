// Expected: many jobs start at once (a wide build's start notices) while the query budget is spent.
// Their hooks do not each queue a request of their own, one per refilled token (the last seeing its
// job running only after all the others): the broker's leader asks about all of them in one
// request, and every hook sees its job running within about one refill.
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { politeScheduler } from "../../src/schedulers/polite.ts";
import type { JobSpec, JobStatus, Scheduler } from "../../src/schedulers/scheduler.ts";
import { openStateDb } from "../../src/state/db.ts";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-polite-burst-"));
const db = openStateDb(root);
afterAll(() => {
  db.close();
  fs.rmSync(root, { recursive: true, force: true });
});
const job: JobSpec = { name: "x", script: "#!/bin/sh\n", workingDirectory: "/", environment: {} };

test("20 start notices on an empty query budget: about one refill, a few requests", async () => {
  let state: JobStatus["state"] = "pending";
  let requests = 0;
  let next = 0;
  const st = (id: string): JobStatus =>
    ({ id, state, rawState: [], reason: null, nodes: "n1", exitCode: null, signal: null, startTime: null, endTime: null });
  const inner: Scheduler = {
    kind: "slurm",
    describe: () => "burst",
    submit: async () => ({ id: String(++next) }),
    status: async (id) => (requests++, st(id)),
    cancel: async () => {},
    statusMany: async (ids) => (requests++, new Map(ids.map((id) => [id, st(id)]))),
  };
  // 40 at once, 2/s for all: queries get 18 at once and 0.9/s (one token every 1.1 s).
  const s = politeScheduler(inner, { db, endpoint: "burst", rate: { burst: 40, perSecond: 2 }, maxQueuedJobs: 0 });
  try {
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push((await s.submit(job)).id);
    await s.statusMany!(ids);
    // Spend every token either bucket could lend, as a wide build's polls and submits had.
    while ((await s.limiters!.query.available()) > 0) await s.limiters!.query.take("query");
    while ((await s.limiters!.submit.available()) > 0) await s.limiters!.submit.take("submit");
    const refillMs = 1000 / s.limiters!.query.policy.perSecond;
    state = "running";
    const before = requests;
    const t0 = Date.now();
    const seen = await Promise.all(ids.map(async (id) => ({ st: await s.statusNow!(id), ms: Date.now() - t0 })));
    const last = Math.max(...seen.map((x) => x.ms));
    console.log(`20 notices: all running after ${last} ms (one token every ${refillMs.toFixed(0)} ms), ` +
      `${requests - before} scheduler requests`);
    expect(seen.every((x) => x.st.state === "running")).toBe(true);
    expect(last).toBeLessThan(3 * refillMs);
    expect(requests - before).toBeLessThanOrEqual(3);
  } finally {
    s.close();
  }
}, 120_000);
