// PbsScheduler (libpbs through bun:ffi, in a client process running as pbs-user) against a real OpenPBS.
// Expected: nsh runs as root with pbs-user = nshpbs and its jobs run as nshpbs; a job goes
// submit → running → completed (exit 0); a failing script ends "failed" with its exit status; a held
// and a running job can be cancelled (cancelled, and cancelling again is fine); one pbs_statjob answers
// for several jobs; with job history off a finished job is "unknown" (never "pending"); pbsResources
// and the time limit reach the job's Resource_List; findTagged finds a job by its tag; doctor reports.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { defaultNshConfig } from "../../src/config/nsh-conf.ts";
import { fromConfig, PbsScheduler } from "../../src/schedulers/pbs.ts";
import type { JobSpec, JobState, JobStatus } from "../../src/schedulers/scheduler.ts";
import { startPbsLab, type PbsLab } from "../lab/pbs.ts";
import { waitUntil } from "../lab/proc.ts";

let lab: PbsLab;
let sched: PbsScheduler;
const traces: string[] = [];
const note = (s: string): void => console.log(`[pbs] ${s}`);

const spec = (name: string, script: string, more: Partial<JobSpec> = {}): JobSpec => ({
  name,
  script,
  workingDirectory: lab.jobsDir,
  environment: { PATH: "/usr/bin:/bin", NSH_TEST: `a,b\\c"d'e` },
  stdout: path.join(lab.jobsDir, `${name}.out`),
  timeLimitMinutes: 5,
  ...more,
});

async function waitFor(id: string, states: JobState[], timeoutMs = 90_000): Promise<JobStatus> {
  let last: JobStatus | undefined;
  await waitUntil(async () => {
    last = await sched.status(id);
    return states.includes(last.state);
  }, timeoutMs, 300);
  return last!;
}

beforeAll(async () => {
  lab = await startPbsLab();
  const conf = { ...defaultNshConfig(), "pbs-user": lab.user.name, "state-dir": path.join(lab.root, "nsh-state") };
  sched = fromConfig(conf, { PBS_CONF_FILE: lab.confFile, NSH_FFI_TRACE: "1" }, { trace: (l) => traces.push(l) });
}, 60 * 60_000);

afterAll(async () => {
  await lab?.stop();
});

describe("pbs scheduler on a real OpenPBS", () => {
  test("prepare connects; the job runs as pbs-user and completes with exit 0", async () => {
    expect(process.getuid?.()).toBe(0); // the hook's situation: nsh runs as root
    await sched.prepare();
    const t0 = performance.now();
    const { id } = await sched.submit(spec("hello", "#!/bin/sh\nprintf '%s\\n' \"hi from $(id -un) $NSH_TEST\"\nsleep 2\n"));
    expect(id).toMatch(/^\d+\./);
    const running = await waitFor(id, ["running", "completing", "completed"]);
    note(`submit -> ${running.state} ${Math.round(performance.now() - t0)} ms`);
    const done = await waitFor(id, ["completed", "failed"]);
    expect(done.state).toBe("completed");
    expect(done.exitCode).toBe(0);
    expect(done.nodes).toBe(lab.serverHost);
    expect((await lab.qstat(id))?.Job_Owner).toStartWith(`${lab.user.name}@`);
    const out = path.join(lab.jobsDir, "hello.out");
    expect(await waitUntil(() => fs.existsSync(out) && fs.statSync(out).size > 0, 30_000)).toBe(true);
    expect(fs.readFileSync(out, "utf8")).toBe(`hi from ${lab.user.name} a,b\\c"d'e\n`);
  }, 180_000);

  test("a failing script ends failed with its exit status", async () => {
    const { id } = await sched.submit(spec("fails", "#!/bin/sh\nexit 3\n"));
    const done = await waitFor(id, ["completed", "failed"]);
    expect(done.state).toBe("failed");
    expect(done.exitCode).toBe(3);
  }, 180_000);

  test("a held job is pending, then cancelled; cancelling again is fine", async () => {
    const id = await lab.qsub(["-h", "-N", "held", "-o", "/dev/null", "-e", "/dev/null"], "#!/bin/sh\ntrue\n");
    expect((await sched.status(id)).state).toBe("pending");
    await sched.cancel(id);
    const st = await waitFor(id, ["cancelled", "failed", "unknown"]);
    expect(st.state).toBe("cancelled");
    await sched.cancel(id);
  }, 180_000);

  test("a running job is cancelled and its status says so", async () => {
    const { id } = await sched.submit(spec("long", "#!/bin/sh\nexec sleep 300\n"));
    expect((await waitFor(id, ["running"])).state).toBe("running");
    await sched.cancelMany([id]);
    const st = await waitFor(id, ["cancelled", "failed", "completed"]);
    note(`cancelled running job: ${JSON.stringify(st.rawState)} Exit_status ${(await lab.qstat(id))?.Exit_status}`);
    expect(st.state).toBe("cancelled");
    await sched.cancelMany([id]);
  }, 180_000);

  test("statusMany answers for several jobs with one pbs_statjob; an id PBS never knew is unknown", async () => {
    const ids: string[] = [];
    for (const n of [1, 2, 3]) ids.push((await sched.submit(spec(`many${n}`, "#!/bin/sh\nsleep 1\n"))).id);
    traces.length = 0;
    const t0 = performance.now();
    const st = await sched.statusMany(ids);
    note(`statusMany of 3 jobs (client process, connect, one statjob): ${Math.round(performance.now() - t0)} ms`);
    expect(traces.filter((l) => l.includes("pbs_statjob(")).length).toBe(1);
    expect([...st.keys()]).toEqual(ids);
    for (const id of ids) expect(st.get(id)!.state).not.toBe("unknown");
    const ghost = `99999.${lab.serverHost}`;
    const withGhost = await sched.statusMany([ids[0]!, ghost]);
    expect(withGhost.get(ghost)!.state).toBe("unknown");
    expect(withGhost.get(ids[0]!)!.state).not.toBe("unknown");
    expect(traces.filter((l) => l.includes("pbs_statjob(")).length).toBe(2); // still one call
    const ghosts = await sched.statusMany([ghost, `99998.${lab.serverHost}`]); // PBS fails such a call as a whole
    expect([...ghosts.values()].map((s) => s.state)).toEqual(["unknown", "unknown"]);
    for (const id of ids) await waitFor(id, ["completed"]);
  }, 180_000);

  test("with job history off, a finished job is unknown, never pending", async () => {
    expect((await lab.qmgr("set server job_history_enable = False")).code).toBe(0);
    try {
      const { id } = await sched.submit(spec("nohist", "#!/bin/sh\nsleep 1\n"));
      const seen: JobState[] = [];
      await waitUntil(async () => {
        const s = (await sched.status(id)).state;
        seen.push(s);
        return s === "unknown" || s === "completed";
      }, 90_000, 200);
      note(`states seen without history: ${[...new Set(seen)].join(" → ")}`);
      expect(seen.at(-1)).toBe("unknown");
      const firstNotPending = seen.findIndex((s) => s !== "pending");
      expect(seen.slice(firstNotPending)).not.toContain("pending");
      expect((await sched.status(id)).reason).toContain("job_history_enable");
    } finally {
      await lab.qmgr("set server job_history_enable = True");
    }
  }, 180_000);

  test("pbsResources and the time limit reach the job's Resource_List", async () => {
    const extra = { ncpus: "1", mem: "64mb" };
    const { id } = await sched.submit(spec("res", "#!/bin/sh\ntrue\n", { extra, timeLimitMinutes: 7 }));
    const job = (await lab.qstat(id)) as { Resource_List?: Record<string, unknown> } | null;
    expect(job?.Resource_List?.ncpus).toBe(1);
    expect(job?.Resource_List?.mem).toBe("64mb");
    expect(job?.Resource_List?.walltime).toBe("00:07:00");
    expect((await waitFor(id, ["completed", "failed"])).timeLimitMinutes).toBe(7);
  }, 180_000);

  test("findTagged finds an unfinished job by its tag", async () => {
    const { id } = await sched.submit(spec("tagged", "#!/bin/sh\nsleep 300\n", { tag: "nsh-tag-abc" }));
    expect(await sched.findTagged("nsh-tag-abc")).toEqual([id]);
    expect(await sched.findTagged("nsh-tag-other")).toEqual([]);
    await sched.cancel(id);
  }, 180_000);

  test("doctor reports pbs.conf, libpbs, the user, the server and job history", async () => {
    const checks = await sched.doctor();
    expect(checks.map((c) => c.what)).toEqual(["pbs.conf", "libpbs", "jobs run as", "PBS server", "PBS job history"]);
    expect(checks.every((c) => c.ok)).toBe(true);
    expect(checks[3]!.detail).toContain(lab.serverHost);
  }, 120_000);
});
