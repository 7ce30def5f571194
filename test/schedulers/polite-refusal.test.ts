// Expected: a submit through politeScheduler that slurmctld refuses for now (its rate limit, a full
// queue) waits and tries again until it goes, so the build does not fail; a refusal that waiting
// cannot cure (a bad partition) fails at once as before; an accounting-policy refusal with no jobs
// of ours queued fails at once; and retries stop at the bound with Slurm's own message.
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { politeScheduler } from "../../src/schedulers/polite.ts";
import { type JobSpec, type Scheduler, SchedulerError } from "../../src/schedulers/scheduler.ts";
import { openStateDb } from "../../src/state/db.ts";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-polite-"));
const db = openStateDb(root);
afterAll(() => {
  db.close();
  fs.rmSync(root, { recursive: true, force: true });
});
const job: JobSpec = { name: "x", script: "#!/bin/sh\n", workingDirectory: "/", environment: {} };
const RATE = "Rate limit exceeded, please retry momentarily (error 1804)";

/** A scheduler that refuses the first `refusals` submits with `message`, then accepts. */
function refusing(refusals: number, message: string): Scheduler & { submits: number } {
  const s = {
    kind: "slurm" as const,
    submits: 0,
    describe: () => "refusing",
    async submit() {
      if (s.submits++ < refusals) throw new SchedulerError("rejected", `Slurm refused the job (v0.0.38): ${message}`, [message]);
      return { id: `${s.submits}` };
    },
    async status(id: string) {
      return { id, state: "completed" as const, rawState: ["COMPLETED"], reason: null, nodes: null, exitCode: 0, signal: null, startTime: null, endTime: null };
    },
    async cancel() {},
  };
  return s;
}
let ep = 0;
const polite = (inner: Scheduler, maxRefusalWaitMs = 60_000) =>
  politeScheduler(inner, { db, endpoint: `ep${ep++}`, rate: null, maxQueuedJobs: 0, refusalBaseMs: 10, refusalCapMs: 50, maxRefusalWaitMs });

test("rate-limit refusals: retried until the submit goes", async () => {
  const inner = refusing(3, RATE);
  const lines: string[] = [];
  const s = politeScheduler(inner, { db, endpoint: "ep-log", rate: null, maxQueuedJobs: 0, refusalBaseMs: 10, refusalCapMs: 50, log: (l) => lines.push(l) });
  expect(await s.submit(job)).toEqual({ id: "4" });
  expect(inner.submits).toBe(4);
  expect(lines.filter((l) => l.includes("refused the submit for now")).length).toBe(3);
  expect((await s.status("4")).state).toBe("completed");
  s.close();
});

test("MaxJobCount reached: retried", async () => {
  const inner = refusing(2, "Unable to create job record, try again (error 2007)");
  expect(await polite(inner).submit(job)).toEqual({ id: "3" });
});

test("a bad partition fails at once", async () => {
  const inner = refusing(1, "Invalid partition name specified (error 2000)");
  await expect(polite(inner).submit(job)).rejects.toThrow("Invalid partition name");
  expect(inner.submits).toBe(1);
});

test("accounting policy with none of our jobs queued: fails at once (a size or time limit)", async () => {
  const inner = refusing(1, "Job violates accounting/QOS policy (job submit limit, user's size and/or time limits) (error 2050)");
  await expect(polite(inner).submit(job)).rejects.toThrow("accounting/QOS policy");
  expect(inner.submits).toBe(1);
});

test("retries end at the bound, with Slurm's message", async () => {
  const inner = refusing(1000, RATE);
  await expect(polite(inner, 300).submit(job)).rejects.toThrow("Rate limit exceeded");
  expect(inner.submits).toBeGreaterThan(1);
});
