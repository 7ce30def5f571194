// PbsCliScheduler against the real OpenPBS 23.06 lab's qsub/qstat/qdel. The tools are reached through
// pbs-bin-dir pointing at logging wrappers (each logs its own /proc cmdline, then execs the real tool),
// so the tests can count calls and read every argv the scheduler produced. The test runs as root, as
// the hook does; PBS refuses root's jobs, so the scheduler runs the tools as pbs-cli-user = nshpbs.
//
// Expected: jobs go pending/running → completed (exit 0) or failed (their exit code); cancel ends held
// and running jobs; many statuses cost one qstat; tagged jobs are found; pbsResources reach the job's
// Resource_List; a refused value fails before any qsub, no job; the job's environment never appears
// in a command line; jobs run as pbs-cli-user; without it root's job is refused with a clear error.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { defaultNshConfig } from "../../src/config/nsh-conf.ts";
import { PBS_TOOLS, PbsCliScheduler, type PbsCliOptions } from "../../src/schedulers/pbs-cli.ts";
import {
  isTerminal, type JobSpec, type JobStatus, type JsonObject,
} from "../../src/schedulers/scheduler.ts";
import { startPbsLab, type PbsLab } from "../lab/pbs.ts";
import { thrown } from "./thrown.ts";

let lab: PbsLab;
let binDir: string;
let callLog: string;
const logs: string[] = [];

const sched = (o: Partial<PbsCliOptions> = {}): PbsCliScheduler =>
  new PbsCliScheduler({ binDir, user: lab.user.name, env: lab.env, log: (l) => logs.push(l), ...o });

const spec = (name: string, script: string, more: Partial<JobSpec> = {}): JobSpec => ({
  name,
  script,
  workingDirectory: lab.jobsDir,
  environment: { PATH: "/usr/local/bin:/usr/bin:/bin", NSH_TEST: name },
  stdout: path.join(lab.jobsDir, `${name}.out`),
  stderr: path.join(lab.jobsDir, `${name}.err`),
  timeLimitMinutes: 5,
  ...more,
});

/** The wrapper log's lines since `mark`: "TOOL ARGV…" per call. */
const callsSince = (mark: number): string[] =>
  fs.readFileSync(callLog, "utf8").slice(mark).split("\n").filter(Boolean);
const logMark = (): number => fs.statSync(callLog).size;
const toolOf = (line: string): string => line.split(" ")[0]!;

async function waitFor(
  s: PbsCliScheduler,
  id: string,
  done: (st: JobStatus) => boolean,
  timeoutMs = 90_000,
): Promise<JobStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const st = await s.status(id);
    if (done(st) || Date.now() > deadline) return st;
    await Bun.sleep(100);
  }
}


/** Ids of the lab's jobs (history included) with this name. */
async function jobsNamed(name: string): Promise<string[]> {
  const r = await lab.run(["qstat", "-x", "-f", "-F", "json"]);
  const jobs = (JSON.parse(r.stdout) as { Jobs?: Record<string, { Job_Name?: string }> }).Jobs ?? {};
  return Object.entries(jobs).filter(([, j]) => j.Job_Name === name).map(([id]) => id);
}

beforeAll(async () => {
  lab = await startPbsLab();
  binDir = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-pbs-cli-bin-"));
  fs.chmodSync(binDir, 0o755);
  callLog = path.join(binDir, "calls.log");
  fs.writeFileSync(callLog, "", { mode: 0o666 });
  fs.chmodSync(callLog, 0o666); // the tools run as pbs-cli-user and log here too
  for (const tool of PBS_TOOLS) {
    const wrapper = [
      "#!/bin/sh",
      `/usr/bin/printf '%s\\n' "$(/usr/bin/tr '\\0' ' ' < /proc/$$/cmdline)" |` +
        ` /usr/bin/sed 's|^/bin/sh [^ ]*/||' >> ${callLog}`,
      `exec ${path.join(lab.exec, "bin", tool)} "$@"`,
      "",
    ];
    fs.writeFileSync(path.join(binDir, tool), wrapper.join("\n"), { mode: 0o755 });
  }
}, 60 * 60_000);

afterAll(async () => {
  await lab?.stop();
  if (binDir) fs.rmSync(binDir, { recursive: true, force: true });
});

describe("PbsCliScheduler on OpenPBS 23.06", () => {
  test("a job runs → completed with exit 0, as pbs-cli-user, in its directory, with exactly its environment", async () => {
    const s = sched();
    await s.prepare();
    const marker = path.join(lab.jobsDir, `hello-${Date.now()}.txt`);
    const go = `${marker}.go`;
    const script = `#!/bin/sh\nwhile [ ! -e ${go} ]; do sleep 0.1; done\n` +
      `echo "$NSH_TEST $(id -un) $(pwd) \${NSH_OUTSIDE-unset}" > ${marker}\n`;
    process.env.NSH_OUTSIDE = "from-the-test"; // nsh's own environment must not reach the job
    const { id } = await s.submit(spec("hello", script));
    delete process.env.NSH_OUTSIDE;
    const running = await waitFor(s, id, (x) => x.state === "running" || isTerminal(x.state));
    expect(running).toMatchObject({ state: "running", nodes: lab.serverHost, exitCode: null, timeLimitMinutes: 5 });
    fs.writeFileSync(go, "");
    const st = await waitFor(s, id, (x) => isTerminal(x.state));
    expect(st).toMatchObject({ id, state: "completed", exitCode: 0, signal: null, nodes: lab.serverHost });
    expect(fs.readFileSync(marker, "utf8")).toBe(`hello ${lab.user.name} ${lab.jobsDir} unset\n`);
    expect((await lab.qstat(id))?.Job_Owner).toStartWith(`${lab.user.name}@`);
    expect(s.describe()).toContain(`tools in ${binDir}`);
  });

  test("a failing script → failed with its exit code", async () => {
    const s = sched();
    const { id } = await s.submit(spec("exit7", "#!/bin/sh\nexit 7\n"));
    expect(await waitFor(s, id, (x) => isTerminal(x.state))).toMatchObject({ state: "failed", exitCode: 7, signal: null });
  });

  test("cancel of a held and of a running job → cancelled; cancelling again is fine", async () => {
    const s = sched();
    const held = await s.submit(spec("held", "#!/bin/sh\ntrue\n", { extra: { ncpus: "64" } })); // can never run
    expect((await lab.run(["qhold", held.id])).code).toBe(0);
    expect(await waitFor(s, held.id, (x) => x.rawState[0] === "H")).toMatchObject({ state: "pending", nodes: null });
    const running = await s.submit(spec("long", "#!/bin/sh\nexec sleep 300\n"));
    expect((await waitFor(s, running.id, (x) => x.state === "running")).state).toBe("running");
    for (const { id } of [held, running]) {
      await s.cancel(id);
      expect((await waitFor(s, id, (x) => isTerminal(x.state))).state).toBe("cancelled");
      await s.cancel(id);
    }
  });

  test("statusMany: one qstat for all jobs, unknown ids → unknown; cancelMany: one qdel", async () => {
    const s = sched();
    const a = await s.submit(spec("many-a", "#!/bin/sh\nexec sleep 300\n"));
    const b = await s.submit(spec("many-b", "#!/bin/sh\ntrue\n", { extra: { ncpus: "64" } }));
    const c = await s.submit(spec("many-c", "#!/bin/sh\nexit 3\n"));
    await waitFor(s, a.id, (x) => x.state === "running");
    await waitFor(s, c.id, (x) => isTerminal(x.state));
    const gone = `99999.${lab.serverHost}`;
    let mark = logMark();
    const all = await s.statusMany([a.id, b.id, c.id, gone, a.id]);
    expect(callsSince(mark).map(toolOf)).toEqual(["qstat"]);
    expect(all.get(a.id)!.state).toBe("running");
    expect(all.get(b.id)).toMatchObject({ state: "pending", reason: expect.stringContaining("Can Never Run") });
    expect(all.get(c.id)).toMatchObject({ state: "failed", exitCode: 3 });
    expect(all.get(gone)).toMatchObject({ state: "unknown", exitCode: null });
    expect(all.get(gone)!.reason).toContain(gone);
    mark = logMark();
    await s.cancelMany([a.id, b.id, c.id, gone]);
    expect(callsSince(mark).map(toolOf)).toEqual(["qdel"]);
    for (const id of [a.id, b.id]) expect((await waitFor(s, id, (x) => isTerminal(x.state))).state).toBe("cancelled");
    expect((await s.status(c.id)).state).toBe("failed");
  });

  test("findTagged finds the unfinished job whose Variable_List carries the tag", async () => {
    const s = sched();
    const tag = `nsh:tag-${Date.now().toString(36)}`;
    const { id } = await s.submit(spec("tagged", "#!/bin/sh\ntrue\n", { tag, extra: { ncpus: "64" } }));
    expect(await s.findTagged(tag)).toEqual([id]);
    expect(await s.findTagged(`${tag}-other`)).toEqual([]);
    await s.cancel(id);
    await waitFor(s, id, (x) => isTerminal(x.state));
    expect(await s.findTagged(tag)).toEqual([]);
  });

  test("pbsResources reach the job's Resource_List (over the time limit's walltime)", async () => {
    const s = sched();
    const extra = { ncpus: "2", mem: "64mb", walltime: "00:07:00" };
    const { id } = await s.submit(spec("params", "#!/bin/sh\ntrue\n", { extra }));
    const job = await lab.qstat(id);
    const rl = job?.Resource_List as Record<string, unknown>;
    expect(rl).toMatchObject({ ncpus: 2, mem: "64mb", walltime: "00:07:00" });
    expect((await s.status(id)).timeLimitMinutes).toBe(7);
  });

  test("a value that is not a string: a clear error, no qsub call, no job; a value PBS refuses: its own error", async () => {
    const s = sched();
    await s.prepare();
    for (const extra of [{ ncpus: 2 }, { walltime: "1,ncpus=99" }] as JsonObject[]) {
      const mark = logMark();
      const e = await thrown(s.submit(spec("refused", "#!/bin/sh\ntrue\n", { extra })));
      expect(e.kind).toBe("config");
      expect(e.message).toContain(`pbsResources '${Object.keys(extra)[0]}'`);
      expect(callsSince(mark)).toEqual([]);
    }
    expect(await jobsNamed("refused")).toEqual([]);
    const e = await thrown(s.submit(spec("badmem", "#!/bin/sh\ntrue\n", { extra: { mem: "lots" } })));
    expect(e.kind).toBe("rejected");
    expect(e.message).toMatch(/qsub refused the job.*Illegal attribute or resource value/i);
    expect(await jobsNamed("badmem")).toEqual([]);
  });

  test("the job's environment (a JWT) never appears in any command line, yet the job gets it", async () => {
    const claims = Buffer.from(`{"sun":"root","n":"${Date.now()}"}`).toString("base64url");
    const secret = `eyJhbGciOiJIUzI1NiJ9.${claims}.c2lnbmF0dXJl`;
    const s = sched();
    await s.prepare();
    const out = path.join(lab.jobsDir, `secret-${Date.now()}.txt`);
    const seenInCmdline: string[] = [];
    let scanning = true;
    const scan = (async () => {
      while (scanning) {
        for (const d of fs.readdirSync("/proc")) {
          if (!/^\d+$/.test(d)) continue;
          try {
            if (fs.readFileSync(`/proc/${d}/cmdline`, "utf8").includes(secret)) seenInCmdline.push(d);
          } catch {}
        }
        await Bun.sleep(1);
      }
    })();
    const mark = logMark();
    const environment = { PATH: "/usr/bin:/bin", NSH_TOKEN: secret };
    const { id } = await s.submit(spec("secret", `#!/bin/sh\nprintf '%s' "$NSH_TOKEN" > ${out}\n`, { environment }));
    const st = await waitFor(s, id, (x) => isTerminal(x.state));
    scanning = false;
    await scan;
    expect(st.state).toBe("completed");
    expect(fs.readFileSync(out, "utf8")).toBe(secret);
    const calls = callsSince(mark);
    expect(calls.map(toolOf)).toContain("qsub");
    expect(calls.join("\n")).not.toContain(secret);
    expect(seenInCmdline).toEqual([]);
    expect(logs.join("\n")).not.toContain(secret);
  });

  test("without pbs-cli-user root's job is refused with PBS's reason; an unknown user is a clear error", async () => {
    const e = await thrown(sched({ user: undefined }).submit(spec("as-root", "#!/bin/sh\ntrue\n")));
    expect(e.message).toMatch(/qsub refused the job.*Bad UID for job execution/);
    expect(e.kind).toBe("auth");
    const u = await thrown(sched({ user: "no-such-user-nsh" }).prepare());
    expect(u.kind).toBe("config");
    expect(u.message).toContain("pbs-cli-user 'no-such-user-nsh'");
    const checks = await sched({ user: undefined }).doctor();
    expect(checks.find((c) => c.what === "jobs run as")).toMatchObject({ ok: false });
  });

  test("fromConfig: pbs-bin-dir defaults to PBS_EXEC/bin of pbs.conf (PBS_CONF_FILE); pbs-host; doctor", async () => {
    const conf = { ...defaultNshConfig(), "job-scheduler": "pbs-cli", "pbs-cli-user": lab.user.name,
      "pbs-host": lab.serverHost };
    const s = PbsCliScheduler.fromConfig(conf, { PBS_CONF_FILE: lab.confFile, PATH: "/usr/bin:/bin" });
    expect(s.describe()).toContain(`tools in ${path.join(lab.exec, "bin")}, server ${lab.serverHost}`);
    const checks = await s.doctor();
    expect(checks.filter((c) => !c.ok)).toEqual([]);
    expect(checks.map((c) => c.what)).toEqual([...PBS_TOOLS, "qsub is PBS's", "PBS server answers qstat -B", "jobs run as"]);
    expect(checks.find((c) => c.what === "PBS server answers qstat -B")?.detail).toBe("OpenPBS 23.06.06");
    const { id } = await s.submit(spec("via-conf", "#!/bin/sh\ntrue\n"));
    expect((await waitFor(s, id, (x) => isTerminal(x.state))).state).toBe("completed");
  });

  test("pbs-host with a pbs-port nothing listens on: prepare fails at once, kind unreachable", async () => {
    const conf = { ...defaultNshConfig(), "pbs-cli-user": lab.user.name, "pbs-host": lab.serverHost, "pbs-port": 15999 };
    const s = PbsCliScheduler.fromConfig(conf, { PBS_CONF_FILE: lab.confFile }, { timeoutMs: 60_000 });
    expect(s.describe()).toContain(`server ${lab.serverHost}:15999`);
    const e = await thrown(s.prepare());
    expect(e.kind).toBe("unreachable");
    // Names the server it was asked for (qstat's own words name pbs.conf's default server).
    expect(e.message).toContain(`the PBS server ${lab.serverHost}:15999 (pbs-host, pbs-port) does not answer`);
  });
});
