// slurm-native as the hook runs it (SlurmNativeThreaded: libslurm on a thread of its own), with
// slurmctld down. Expected: the status call fails as 'unreachable' with Slurm's words after
// libslurm's own retries, as on the main thread, but the main thread keeps running meanwhile (a
// 20 ms timer never waits seconds; on the main thread libslurm held it 9–18 s), so a hook's ssh
// streams and log relaying go on. A job goes submit → completed through the thread as well, and
// the process exits by itself afterwards (the worker never keeps it alive).
import { afterAll, beforeAll, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { SchedulerError } from "../../src/schedulers/scheduler.ts";
import { SlurmNativeThreaded } from "../../src/schedulers/slurm-native-thread.ts";
import { ensureLibslurmDev } from "../lab/libslurm-dev.ts";
import { startSlurmLab, type SlurmLab } from "../lab/slurm.ts";

let lab: SlurmLab;
let cache: string;

beforeAll(async () => {
  await ensureLibslurmDev();
  cache = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-native-thread-"));
  lab = await startSlurmLab({ name: "native-thread" });
});

afterAll(async () => {
  await lab?.cleanup();
  fs.rmSync(cache, { recursive: true, force: true });
});

const make = () => new SlurmNativeThreaded({ conf: lab.confFile, cacheDir: path.join(cache, "c"), env: { ...process.env } });

test("a job through the thread: submitted, completed, described", async () => {
  const s = make();
  await s.prepare();
  expect(s.describe()).toMatch(/Slurm 22\.05/);
  const job = await s.submit({ name: "thread", script: "#!/bin/sh\ntrue\n", workingDirectory: lab.jobsDir, environment: { PATH: "/usr/bin:/bin" } });
  let state = "";
  for (let i = 0; i < 600 && state !== "completed"; i++) {
    state = (await s.statusMany([job.id])).get(job.id)!.state;
    await Bun.sleep(100);
  }
  expect(state).toBe("completed");
}, 120_000);

test("slurmctld down: 'unreachable' as before, and the main thread runs meanwhile", async () => {
  const s = make();
  await s.prepare();
  process.kill(lab.pids.slurmctld, "SIGKILL"); // this lab's own slurmctld
  let last = performance.now();
  let maxGap = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
  }, 20);
  const t0 = performance.now();
  const err = await s.status("1").catch((e: unknown) => e);
  // the pause up to now counts too: a blocked thread runs no timer callback until the call returns
  maxGap = Math.max(maxGap, performance.now() - last);
  clearInterval(timer);
  const ms = Math.round(performance.now() - t0);
  console.log(`[slurm-native thread] status with slurmctld down failed after ${ms} ms; longest main-thread pause ${Math.round(maxGap)} ms`);
  expect(err).toBeInstanceOf(SchedulerError);
  expect((err as SchedulerError).kind).toBe("unreachable");
  expect((err as Error).message).toContain("Unable to contact slurm controller");
  // libslurm waited seconds; the main thread never did (a loaded machine may pause it briefly).
  expect(ms).toBeGreaterThan(3000);
  expect(maxGap).toBeLessThan(2500);
}, 180_000);
