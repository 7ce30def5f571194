// slurm-native as the hook runs it (SlurmNativeThreaded: libslurm on a thread of its own), with
// slurmctld down. Expected: the status call fails as 'unreachable' with Slurm's words after
// libslurm's own retries, as on the main thread, but the main thread keeps running meanwhile (a
// 20 ms timer never waits seconds; on the main thread libslurm held it 9–18 s), so a hook's ssh
// streams and log relaying go on. A job goes submit → completed through the thread as well, and
// the process exits by itself afterwards (the worker never keeps it alive). Each case runs in a
// process of its own: libslurm reads one slurm.conf per process, and other test files load theirs.
import { afterAll, beforeAll, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ensureLibslurmDev, needsHostSlurm } from "../lab/libslurm-dev.ts";
import { startSlurmLab, type SlurmLab } from "../lab/slurm.ts";

const src = (f: string) => JSON.stringify(path.resolve(import.meta.dir, "../../src/schedulers", f));
// Prints one JSON line: what the case saw. No process.exit: the process must end by itself.
const program = `
import { SlurmNativeThreaded } from ${src("slurm-native-thread.ts")};
import { SchedulerError } from ${src("scheduler.ts")};
const s = new SlurmNativeThreaded({ conf: process.env.SLURM_CONF, cacheDir: process.env.CACHE, env: { ...process.env } });
await s.prepare();
if (process.argv[2] === "job") {
  const spec = { name: "thread", script: "#!/bin/sh\\ntrue\\n", workingDirectory: process.env.JOBS, environment: { PATH: "/usr/bin:/bin" } };
  const job = await s.submit(spec);
  let state = "";
  for (let i = 0; i < 600 && state !== "completed"; i++) {
    state = (await s.statusMany([job.id])).get(job.id).state;
    await Bun.sleep(100);
  }
  console.log(JSON.stringify({ describe: s.describe(), state }));
} else {
  process.kill(Number(process.env.CTLD), "SIGKILL"); // the lab's own slurmctld
  let last = performance.now();
  let maxGap = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
  }, 20);
  const t0 = performance.now();
  const err = await s.status("1").catch((e) => e);
  // the pause up to now counts too: a blocked thread runs no timer callback until the call returns
  maxGap = Math.max(maxGap, performance.now() - last);
  clearInterval(timer);
  const ms = performance.now() - t0;
  console.log(JSON.stringify({ ms, maxGap, kind: err instanceof SchedulerError ? err.kind : String(err), message: err.message }));
}
`;

let lab: SlurmLab;
let dir: string;

const hostOnly = needsHostSlurm("slurm-native-off-thread.test.ts");

beforeAll(async () => {
  if (hostOnly) return;
  await ensureLibslurmDev();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-native-thread-"));
  fs.writeFileSync(path.join(dir, "case.ts"), program);
  lab = await startSlurmLab({ name: "native-thread" });
});

afterAll(async () => {
  if (hostOnly) return;
  await lab?.cleanup();
  fs.rmSync(dir, { recursive: true, force: true });
});

function runCase(which: "job" | "down") {
  const env = { ...process.env, SLURM_CONF: lab.confFile, CACHE: path.join(dir, "cache"), JOBS: lab.jobsDir, CTLD: String(lab.pids.slurmctld) };
  const p = Bun.spawnSync([process.execPath, path.join(dir, "case.ts"), which], { env, timeout: 120_000 });
  const out = p.stdout.toString().trim();
  if (p.exitCode !== 0 || !out) console.log(out, p.stderr.toString());
  // It ended by itself (not killed by the timeout): the worker does not keep a process alive.
  expect(p.exitCode).toBe(0);
  return JSON.parse(out.split("\n").pop()!);
}

test.skipIf(hostOnly)("a job through the thread: submitted, completed, described; the process then ends by itself", () => {
  const r = runCase("job");
  expect(r.state).toBe("completed");
  expect(r.describe).toMatch(/Slurm 22\.05/);
}, 150_000);

test.skipIf(hostOnly)("slurmctld down: 'unreachable' as before, and the main thread runs meanwhile", () => {
  const r = runCase("down");
  console.log(`[slurm-native thread] status with slurmctld down failed after ${Math.round(r.ms)} ms; longest main-thread pause ${Math.round(r.maxGap)} ms`);
  expect(r.kind).toBe("unreachable");
  expect(r.message).toContain("Unable to contact slurm controller");
  // libslurm waited seconds; the main thread never did (a loaded machine may pause it briefly).
  expect(r.ms).toBeGreaterThan(3000);
  expect(r.maxGap).toBeLessThan(2500);
}, 150_000);
