// Expected: while the query budget runs low the broker paces its polls (a pending job is asked
// about less often than every 100 ms), but a sign that the job just changed (statusNow: its start
// notice) is answered by a poll at once, as long as a token is left; a plain status() waits for
// the paced tick.
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { JobBroker } from "../../src/schedulers/job-broker.ts";
import type { JobStatus, Scheduler } from "../../src/schedulers/scheduler.ts";
import { openStateDb } from "../../src/state/db.ts";
import { JobWatchTable } from "../../src/state/job-watch.ts";
import { RateLimiter } from "../../src/state/rate-limit.ts";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-broker-now-"));
const db = openStateDb(root);
afterAll(() => {
  db.close();
  fs.rmSync(root, { recursive: true, force: true });
});

const pending = (id: string): JobStatus =>
  ({ id, state: "pending", rawState: ["PENDING"], reason: "Resources", nodes: null, exitCode: null, signal: null, startTime: null, endTime: null });

test("statusNow polls at once under a low budget; status() waits for the paced tick", async () => {
  const polls: number[] = [];
  const inner: Scheduler = {
    kind: "slurm",
    describe: () => "pending",
    submit: async () => ({ id: "1" }),
    status: async (id) => pending(id),
    cancel: async () => {},
    async statusMany(ids) {
      polls.push(Date.now());
      return new Map(ids.map((id) => [id, pending(id)]));
    },
  };
  // 4 tokens, one back every 2 s: two spent here, the first poll spends the third.
  const limiter = new RateLimiter(db, "now query", { burst: 4, perSecond: 0.5 });
  await limiter.take("query");
  await limiter.take("query");
  const broker = new JobBroker(inner, new JobWatchTable(db, "now"), { limiter });
  try {
    await broker.status("5");
    expect(polls.length).toBe(1);
    // One token left of 4: the pace is about a second between polls.
    await Bun.sleep(20); // the first poll's answer is older than the next question
    const t0 = Date.now();
    await broker.status("5", { fresh: true, now: true });
    const nowMs = Date.now() - t0;
    expect(polls.length).toBe(2);
    const t1 = Date.now();
    await broker.status("5", { fresh: true });
    const pacedMs = Date.now() - t1;
    console.log(`statusNow answered in ${nowMs} ms, the paced status() in ${pacedMs} ms`);
    expect(nowMs).toBeLessThan(500);
    expect(pacedMs).toBeGreaterThan(nowMs + 500);
    expect(polls.length).toBe(3);
  } finally {
    broker.close();
  }
}, 30_000);
