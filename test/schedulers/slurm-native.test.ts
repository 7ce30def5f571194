// SlurmNativeScheduler (libslurm through the compiled shim) against a real Slurm 22.05 lab.
// Expected: jobs go submit → running → completed; a failing script ends "failed" with its exit
// code; pending and running jobs can be cancelled (and cancelling again is fine); one statusMany
// call answers for several jobs, also for an id Slurm never knew ("unknown"); findTagged finds a
// job by the tag in its comment; slurmNativeConstraints reach the job (NumCPUs, MinMemoryNode,
// MinMemoryCPU); memPerNode with memPerCPU is refused by name and no job appears; a job can run as
// another user (slurm-native-user) when nsh runs as root; the shim is compiled once and reused.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { defaultNshConfig } from "../../src/config/nsh-conf.ts";
import { type JobSpec, type JobStatus, SchedulerError } from "../../src/schedulers/scheduler.ts";
import { fromConfig, SlurmNativeScheduler } from "../../src/schedulers/slurm-native.ts";
import { ensureLibslurmDev, needsHostSlurm } from "../lab/libslurm-dev.ts";
import { startSlurmLab, type SlurmLab } from "../lab/slurm.ts";

let lab: SlurmLab;
let cacheRoot: string;
let sched: SlurmNativeScheduler;
const logs: string[] = [];
const note = (s: string): void => console.log(`[slurm-native] ${s}`);

const make = (o: Partial<ConstructorParameters<typeof SlurmNativeScheduler>[0]> = {}): SlurmNativeScheduler =>
  new SlurmNativeScheduler({ conf: lab.confFile, cacheDir: path.join(cacheRoot, "cache"), log: (l) => logs.push(l), ...o });

const spec = (name: string, script: string, more: Partial<JobSpec> = {}): JobSpec => ({
  name,
  script,
  workingDirectory: lab.jobsDir,
  environment: { PATH: "/usr/local/bin:/usr/bin:/bin", NSH_TEST: name },
  stdout: path.join(lab.jobsDir, `${name}-%j.out`),
  timeLimitMinutes: 5,
  ...more,
});

async function waitFor(id: string, done: (st: JobStatus) => boolean, timeoutMs = 60_000): Promise<{ st: JobStatus; seen: string[] }> {
  const seen: string[] = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const st = await sched.status(id);
    if (seen[seen.length - 1] !== st.state) seen.push(st.state);
    if (done(st) || Date.now() > deadline) return { st, seen };
    await Bun.sleep(50);
  }
}

const showJob = async (id: string): Promise<string> => (await lab.run(["scontrol", "show", "job", id])).stdout;
const field = (text: string, key: string): string | undefined => new RegExp(`\\b${key}=(\\S+)`).exec(text)?.[1];

const hostOnly = needsHostSlurm("slurm-native.test.ts");

beforeAll(async () => {
  if (hostOnly) return;
  cacheRoot = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-native-"));
  await ensureLibslurmDev();
  lab = await startSlurmLab({ name: "native", cpus: 4 });
  sched = make();
});

afterAll(async () => {
  if (hostOnly) return;
  await lab?.cleanup();
  fs.rmSync(cacheRoot, { recursive: true, force: true });
});

describe.skipIf(hostOnly)("SlurmNativeScheduler on Slurm 22.05", () => {
  test("the shim is compiled on first use, then a second start reuses the cached file", async () => {
    await sched.prepare();
    expect(sched.shim).toMatchObject({ compiled: true, slurmVersion: "22.05.8" });
    const file = sched.shim!.file;
    const before = fs.statSync(file);
    expect(before.mode & 0o777).toBe(0o700);
    expect(fs.statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
    note(`compiled ${path.basename(file)} in ${Math.round(sched.shim!.compileMs)} ms`);
    // A second scheduler (as a second hook would be) with a PATH without any compiler: it must not need one.
    const again = make({ env: { ...process.env, PATH: "/nonexistent" } });
    await again.prepare();
    expect(again.shim).toMatchObject({ compiled: false, file });
    const after = fs.statSync(file);
    expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);
    expect(again.describe()).toContain("Slurm 22.05.8");
  });

  test("submit → running → completed, with the job's output and the tag in its comment", async () => {
    const h = await sched.submit(spec("ok", "#!/bin/sh\necho hello from $NSH_TEST\nsleep 2\n", { tag: "nsh-tag-ok" }));
    const { st, seen } = await waitFor(h.id, (s) => s.state === "completed");
    expect(seen).toContain("running");
    expect(st).toMatchObject({ state: "completed", exitCode: 0, signal: null, timeLimitMinutes: 5 });
    expect(st.nodes).toBe(lab.nodeName);
    expect(st.endTime! >= st.startTime!).toBe(true);
    expect(fs.readFileSync(path.join(lab.jobsDir, `ok-${h.id}.out`), "utf8")).toBe("hello from ok\n");
    expect(field(await showJob(h.id), "Comment")).toBe("nsh-tag-ok");
    note(`states seen: ${seen.join(" → ")}`);
  });

  test("a failing script → failed with its exit code", async () => {
    const h = await sched.submit(spec("bad", "#!/bin/sh\nexit 3\n"));
    const { st } = await waitFor(h.id, (s) => s.state === "failed" || s.state === "completed");
    expect(st).toMatchObject({ state: "failed", exitCode: 3, signal: null, reason: "NonZeroExitCode" });
  });

  test("cancel of a running and of a pending job → cancelled; cancelling again is fine", async () => {
    const blocker = await sched.submit(spec("blocker", "#!/bin/sh\nsleep 120\n", { extra: { cpus: 4 } }));
    await waitFor(blocker.id, (s) => s.state === "running");
    const queued = await sched.submit(spec("queued", "#!/bin/sh\ntrue\n", { extra: { cpus: 1 } }));
    const pend = await sched.status(queued.id);
    expect(pend).toMatchObject({ state: "pending", nodes: null, startTime: null, exitCode: null });
    await sched.cancel(queued.id);
    expect((await waitFor(queued.id, (s) => s.state === "cancelled")).st.state).toBe("cancelled");
    await sched.cancelMany([blocker.id]);
    const { st } = await waitFor(blocker.id, (s) => s.state === "cancelled");
    expect(st.state).toBe("cancelled");
    await sched.cancelMany([blocker.id, queued.id]); // both finished already: no error
  });

  test("statusMany answers for several jobs in one libslurm call (traced), an unknown id as 'unknown'", async () => {
    const a = await sched.submit(spec("many-a", "#!/bin/sh\ntrue\n"));
    const b = await sched.submit(spec("many-b", "#!/bin/sh\nexit 7\n"));
    await waitFor(b.id, (s) => s.state === "failed");
    await waitFor(a.id, (s) => s.state === "completed");
    // NSH_FFI_TRACE=1 shows each shim call: one nsh_shim_jobs for all three ids.
    const traced = make({ env: { ...process.env, NSH_FFI_TRACE: "1" } });
    const lines: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string | Uint8Array) => (lines.push(String(chunk)), true)) as typeof process.stderr.write;
    let all: Map<string, JobStatus>;
    try {
      all = await traced.statusMany([a.id, b.id, "4000000"]);
    } finally {
      process.stderr.write = write;
    }
    const calls = lines.filter((l) => l.startsWith("nsh ffi: slurm-shim nsh_shim_jobs("));
    expect(calls).toHaveLength(1);
    expect(calls[0]).toContain(`[${a.id},${b.id},4000000]`);
    expect([...all.keys()]).toEqual([a.id, b.id, "4000000"]);
    expect(all.get(a.id)).toMatchObject({ state: "completed", exitCode: 0 });
    expect(all.get(b.id)).toMatchObject({ state: "failed", exitCode: 7 });
    expect(all.get("4000000")).toMatchObject({ state: "unknown", exitCode: null });
  });

  test("findTagged finds the unfinished job carrying the tag, and not finished ones", async () => {
    const tag = `nsh-find-${process.pid}`;
    const h = await sched.submit(spec("tagged", "#!/bin/sh\nsleep 60\n", { tag }));
    const done = await sched.submit(spec("tagged-done", "#!/bin/sh\ntrue\n", { tag: `${tag}-done` }));
    await waitFor(done.id, (s) => s.state === "completed");
    expect(await sched.findTagged(tag)).toEqual([h.id]);
    expect(await sched.findTagged(`${tag}-done`)).toEqual([]);
    await sched.cancel(h.id);
  });

  test("slurmNativeConstraints reach the job: cpus, memPerNode, memPerCPU", async () => {
    const perNode = await sched.submit(spec("mem-node", "#!/bin/sh\ntrue\n", { extra: { cpus: 2, memPerNode: "300M" } }));
    const perCpu = await sched.submit(spec("mem-cpu", "#!/bin/sh\ntrue\n", { extra: { cpus: 3, memPerCPU: 70 } }));
    const a = await showJob(perNode.id);
    const b = await showJob(perCpu.id);
    expect([field(a, "NumCPUs"), field(a, "MinMemoryNode")]).toEqual(["2", "300M"]);
    expect([field(b, "NumCPUs"), field(b, "MinMemoryCPU")]).toEqual(["3", "70M"]);
  });

  test("memPerNode and memPerCPU together: a clear error, and no job", async () => {
    const name = `both-mem-${process.pid}`;
    let err: unknown;
    try {
      await sched.submit(spec(name, "#!/bin/sh\ntrue\n", { extra: { memPerNode: 100, memPerCPU: 50 } }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SchedulerError);
    expect((err as Error).message).toContain("memPerNode and memPerCPU are mutually exclusive");
    const q = await lab.run(["squeue", "-h", "-t", "all", "-n", name, "-o", "%i"]);
    expect(q.stdout.trim()).toBe("");
  });

  test("slurm-native-user: root submits a job that runs as another user", async () => {
    const asNobody = fromConfig({ ...defaultNshConfig(), "slurm-conf": lab.confFile, "slurm-native-user": "nobody", "state-dir": cacheRoot });
    const h = await asNobody.submit(spec("as-nobody", "#!/bin/sh\nid -un\n"));
    expect((await waitFor(h.id, (s) => s.state === "completed")).st.state).toBe("completed");
    expect(fs.readFileSync(path.join(lab.jobsDir, `as-nobody-${h.id}.out`), "utf8").trim()).toBe("nobody");
    expect(field(await showJob(h.id), "UserId")).toBe("nobody(65534)");
    // its status comes from nobody's jobs
    expect((await asNobody.statusMany([h.id, "4000001"])).get(h.id)?.state).toBe("completed");
  });

  test("doctor reports headers, compiler, shim and slurmctld", async () => {
    const checks = await sched.doctor();
    expect(checks.map((c) => [c.what, c.ok])).toEqual([
      ["slurm headers", true],
      ["C compiler", true],
      ["libslurm", true],
      ["libslurm shim", true],
      ["slurmctld", true],
    ]);
  });
});
