// SlurmCliScheduler against the real Slurm lab's sbatch/squeue/sacct/scancel (22.05; the Debian root's
// 24.11 or 26.05 with NSH_LAB_SUITE=trixie|sid). The tools are
// reached through slurm-bin-dir pointing at logging wrappers (each logs its own /proc cmdline, then
// execs the real tool), so the tests can count calls and read every argv the scheduler produced.
// The lab keeps finished jobs for MinJobAge=2 s only, so a finished job soon leaves squeue and
// its status must come from sacct (sacct -c here: the lab has jobcomp/filetxt, no slurmdbd).
//
// Expected: jobs go pending/running → completed (exit 0) or failed (their exit code); cancel ends
// pending and running jobs; many statuses cost one squeue; tagged jobs are found; parameters reach
// Slurm; a key with no sbatch option fails before any sbatch runs; the job's environment never
// appears in a command line; a slurm-cli-user's jobs run as that user.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { defaultNshConfig } from "../../src/config/nsh-conf.ts";
import { isTerminal, type JobSpec, type JobStatus, type JsonObject } from "../../src/schedulers/scheduler.ts";
import { SLURM_TOOLS, SlurmCliScheduler, type SlurmCliOptions } from "../../src/schedulers/slurm-cli.ts";
import { startSlurmLab, type SlurmLab } from "../lab/slurm.ts";
import { waitUntil } from "../lab/proc.ts";
import { thrown } from "./thrown.ts";

let lab: SlurmLab;
let binDir: string;
let callLog: string;
const logs: string[] = [];

const sched = (o: Partial<SlurmCliOptions> = {}): SlurmCliScheduler =>
  new SlurmCliScheduler({ binDir, slurmConf: lab.confFile, log: (l) => logs.push(l), ...o });

const spec = (name: string, script: string, more: Partial<JobSpec> = {}): JobSpec => ({
  name,
  script,
  workingDirectory: lab.jobsDir,
  environment: { PATH: "/usr/local/bin:/usr/bin:/bin", NSH_TEST: name },
  stdout: path.join(lab.jobsDir, `${name}-%j.out`),
  stderr: path.join(lab.jobsDir, `${name}-%j.out`),
  timeLimitMinutes: 5,
  ...more,
});

/** The wrapper log's lines since `mark`: "TOOL ARGV…" per call. */
const callsSince = (mark: number): string[] => fs.readFileSync(callLog, "utf8").slice(mark).split("\n").filter(Boolean);
const logMark = (): number => fs.statSync(callLog).size;
const toolOf = (line: string): string => line.split(" ")[0]!;

async function waitFor(
  s: SlurmCliScheduler,
  id: string,
  done: (st: JobStatus) => boolean,
  timeoutMs = 60_000,
): Promise<{ st: JobStatus; seen: string[] }> {
  const seen: string[] = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const st = await s.status(id);
    if (seen[seen.length - 1] !== st.state) seen.push(st.state);
    if (done(st) || Date.now() > deadline) return { st, seen };
    await Bun.sleep(50);
  }
}


const squeueKnows = async (id: string): Promise<boolean> => (await lab.run(["squeue", "-h", "-t", "all", "-j", id, "-o", "%i"])).stdout.trim() === id;

beforeAll(async () => {
  lab = await startSlurmLab({ name: "cli", extraConf: "MinJobAge=2" });
  const show = await lab.run(["scontrol", "show", "config"]);
  expect(show.stdout).toMatch(/MinJobAge\s*=\s*2 sec/);
  binDir = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-slurm-cli-bin-"));
  fs.chmodSync(binDir, 0o755);
  callLog = path.join(binDir, "calls.log");
  fs.writeFileSync(callLog, "", { mode: 0o666 });
  fs.chmodSync(callLog, 0o666); // a slurm-cli-user's tools log here too
  for (const tool of SLURM_TOOLS) {
    // the lab's release of the tool: the Debian root's (through its wrapper) when NSH_LAB_SUITE names one
    const real = Bun.which(tool, { PATH: `${lab.binDir ? `${lab.binDir}:` : ""}/usr/bin:/bin:/usr/sbin` })!;
    const wrapper = [
      "#!/bin/sh",
      `printf '%s\\n' "$(tr '\\0' ' ' < /proc/$$/cmdline)" | sed 's|^/bin/sh [^ ]*/||' >> ${callLog}`,
      // (entering the root needs pivot_root and unshare from sbin; nsh runs its tools with a short PATH)
      `${lab.binDir ? 'PATH="$PATH:/usr/sbin:/sbin" ' : ""}exec ${real} "$@"`,
      "",
    ];
    fs.writeFileSync(path.join(binDir, tool), wrapper.join("\n"), { mode: 0o755 });
  }
});

afterAll(async () => {
  await lab?.cleanup();
  if (binDir) fs.rmSync(binDir, { recursive: true, force: true });
});

describe("SlurmCliScheduler on Slurm 22.05", () => {
  test("prepare finds the tools and the version; a job runs → completed with exit 0, its environment as given", async () => {
    const s = sched();
    await s.prepare();
    const marker = path.join(lab.jobsDir, `hello-${Date.now()}.txt`);
    const go = `${marker}.go`;
    const script = `#!/bin/sh\nwhile [ ! -e ${go} ]; do sleep 0.1; done\necho "$NSH_TEST $SLURM_JOB_ID \${HOME-unset}" > ${marker}\n`;
    const { id } = await s.submit(spec("hello", script));
    const running = await waitFor(s, id, (x) => x.state === "running" || isTerminal(x.state));
    expect(running.st).toMatchObject({ state: "running", nodes: lab.nodeName, exitCode: null, timeLimitMinutes: 5 });
    fs.writeFileSync(go, "");
    const { st } = await waitFor(s, id, (x) => isTerminal(x.state));
    expect(st).toMatchObject({ id, state: "completed", exitCode: 0, signal: null, nodes: lab.nodeName });
    // HOME is in the test's environment but not the job's: the job gets exactly its own variables
    expect(fs.readFileSync(marker, "utf8")).toBe(`hello ${id} unset\n`);
    expect(s.describe()).toContain(`tools in ${binDir}`);
  });

  test("a failing script → failed with its exit code, also once squeue has forgotten it (sacct)", async () => {
    const s = sched();
    const { id } = await s.submit(spec("exit7", "#!/bin/sh\nexit 7\n"));
    const { st } = await waitFor(s, id, (x) => isTerminal(x.state));
    expect(st).toMatchObject({ state: "failed", exitCode: 7, signal: null });
    expect(await waitUntil(async () => !(await squeueKnows(id)), 120_000, 500)).toBe(true);
    const mark = logMark();
    expect(await s.status(id)).toMatchObject({ id, state: "failed", exitCode: 7, nodes: lab.nodeName });
    expect(callsSince(mark).map(toolOf)).toEqual(["squeue", "sacct", "sacct"]); // sacct, then sacct -c (no slurmdbd)
  });

  test("cancel of a pending and of a running job → cancelled; cancelling again is fine", async () => {
    const s = sched();
    const held = await s.submit(spec("held", "#!/bin/sh\ntrue\n", { extra: { hold: true } }));
    const running = await s.submit(spec("long", "#!/bin/sh\nexec sleep 300\n"));
    expect(await s.status(held.id)).toMatchObject({ state: "pending", reason: "JobHeldUser", nodes: null, startTime: null });
    expect((await waitFor(s, running.id, (x) => x.state === "running")).st.state).toBe("running");
    for (const { id } of [held, running]) {
      await s.cancel(id);
      expect((await waitFor(s, id, (x) => isTerminal(x.state))).st.state).toBe("cancelled");
      await s.cancel(id);
    }
  });

  test("statusMany: one squeue for all jobs, sacct only for the ids squeue does not know; cancelMany: one scancel", async () => {
    const s = sched();
    const a = await s.submit(spec("many-a", "#!/bin/sh\nexec sleep 300\n"));
    const b = await s.submit(spec("many-b", "#!/bin/sh\ntrue\n", { extra: { hold: true } }));
    const c = await s.submit(spec("many-c", "#!/bin/sh\nexit 3\n"));
    await waitFor(s, a.id, (x) => x.state === "running");
    await waitFor(s, c.id, (x) => isTerminal(x.state));
    let mark = logMark();
    const all = await s.statusMany([a.id, b.id, c.id, a.id]);
    expect(callsSince(mark).map(toolOf)).toEqual(["squeue"]);
    expect([...all.keys()].sort()).toEqual([a.id, b.id, c.id].sort());
    expect(all.get(a.id)!.state).toBe("running");
    expect(all.get(b.id)!.state).toBe("pending");
    // c may already have left squeue; either way it failed with exit 3
    mark = logMark();
    const withGone = await s.statusMany([a.id, b.id, "999999"]);
    expect(callsSince(mark).map(toolOf).filter((t) => t === "squeue")).toHaveLength(1);
    expect(withGone.get("999999")).toMatchObject({ state: "unknown", exitCode: null });
    expect(withGone.get("999999")!.reason).toContain("999999");
    mark = logMark();
    await s.cancelMany([a.id, b.id, c.id]);
    expect(callsSince(mark).map(toolOf)).toEqual(["scancel"]);
    const after = await s.statusMany([a.id, b.id, c.id]);
    for (const id of [a.id, b.id]) expect(["cancelled", "completing"]).toContain(after.get(id)!.state);
    expect(after.get(c.id)).toMatchObject({ state: "failed", exitCode: 3 });
  });

  test("squeue --json (forced on 22.05, which lists every job): the same statuses", async () => {
    const s = sched({ squeueOutput: "json" });
    const held = await s.submit(spec("json-held", "#!/bin/sh\ntrue\n", { extra: { hold: true } }));
    const st = await s.statusMany([held.id]);
    expect([...st.keys()]).toEqual([held.id]);
    expect(st.get(held.id)).toMatchObject({ state: "pending", reason: "JobHeldUser", timeLimitMinutes: 5 });
    await s.cancel(held.id);
  });

  test("findTagged finds the unfinished job whose comment carries the tag", async () => {
    const s = sched();
    const tag = `nsh:tag-${Date.now().toString(36)}`;
    const { id } = await s.submit(spec("tagged", "#!/bin/sh\ntrue\n", { tag, extra: { hold: true, comment: "a note" } }));
    expect(await s.findTagged(tag)).toEqual([id]);
    expect(await s.findTagged(`${tag}-other`)).toEqual([]);
    await s.cancel(id);
    await waitFor(s, id, (x) => isTerminal(x.state));
    expect(await s.findTagged(tag)).toEqual([]);
  });

  test("extra params reach Slurm (derivation < setting): cpus, memory, time, partition, comment", async () => {
    const s = sched({ extraParams: { memory_per_node: { set: true, infinite: false, number: 96 } } });
    const tag = "nsh:params";
    const extra = { hold: true, cpus_per_task: 2, memory_per_node: 64, time_limit: 7, partition: lab.partition, comment: "mine" };
    const job = spec("params", "#!/bin/sh\ntrue\n", { tag, extra });
    const { id } = await s.submit(job);
    const show = (await lab.run(["scontrol", "show", "job", id])).stdout;
    expect(show).toMatch(/CPUs\/Task=2\b/);
    expect(show).toMatch(/MinMemoryNode=96M\b/);
    expect(show).toContain("TimeLimit=00:07:00");
    expect(show).toContain(`Partition=${lab.partition}`);
    expect(show).toContain(`Comment=mine ${tag}`);
    await s.cancel(id);
  });

  test("a key with no sbatch option, or an unknown one: a clear error and no sbatch call, no job", async () => {
    const s = sched();
    await s.prepare();
    for (const extra of [{ tres_per_node: "gres:gpu:1" }, { frobnicate: 1 }] as JsonObject[]) {
      const mark = logMark();
      const e = await thrown(s.submit(spec("refused", "#!/bin/sh\ntrue\n", { extra })));
      expect(e.kind).toBe("config");
      expect(e.message).toContain(`'${Object.keys(extra)[0]}'`);
      expect(callsSince(mark)).toEqual([]);
    }
    const r = await lab.run(["squeue", "-h", "-t", "all", "-n", "refused", "-o", "%i"]);
    expect(r.stdout.trim()).toBe("");
  });

  test("a value Slurm refuses: sbatch's own error, kind rejected", async () => {
    const e = await thrown(sched().submit(spec("nopart", "#!/bin/sh\ntrue\n", { extra: { partition: "nosuchpartition" } })));
    expect(e.kind).toBe("rejected");
    expect(e.message).toMatch(/sbatch refused the job.*invalid partition/i);
  });

  test("the job's environment (a JWT) never appears in any command line, yet the job gets it", async () => {
    const secret = `eyJhbGciOiJIUzI1NiJ9.${Buffer.from(`{"sun":"root","n":"${Date.now()}"}`).toString("base64url")}.c2lnbmF0dXJl`;
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
    const { st } = await waitFor(s, id, (x) => isTerminal(x.state));
    scanning = false;
    await scan;
    expect(st.state).toBe("completed");
    expect(fs.readFileSync(out, "utf8")).toBe(secret);
    const calls = callsSince(mark);
    expect(calls.map(toolOf)).toContain("sbatch");
    expect(calls.join("\n")).not.toContain(secret);
    expect(seenInCmdline).toEqual([]);
    expect(logs.join("\n")).not.toContain(secret);
  });

  test("slurm-cli-user: the tools, and so the job, run as that user; an unknown user is a clear error", async () => {
    const s = sched({ user: "nobody" });
    const out = path.join(lab.jobsDir, `as-nobody-${Date.now()}.txt`);
    const { id } = await s.submit(spec("as-nobody", `#!/bin/sh\nid -u > ${out}\n`));
    const { st } = await waitFor(s, id, (x) => isTerminal(x.state));
    expect(st.state).toBe("completed");
    expect(fs.readFileSync(out, "utf8").trim()).toBe("65534");
    const e = await thrown(sched({ user: "no-such-user-nsh" }).prepare());
    expect(e.kind).toBe("config");
    expect(e.message).toContain("slurm-cli-user 'no-such-user-nsh'");
    const checks = await s.doctor();
    expect(checks.find((c) => c.what === "jobs run as")?.detail).toContain("uid 65534");
  });

  test("fromConfig reads slurm-bin-dir, slurm-conf, slurm-cli-user; doctor reports each check", async () => {
    const conf = { ...defaultNshConfig(), "job-scheduler": "slurm-cli", "slurm-bin-dir": binDir, "slurm-conf": lab.confFile };
    const s = SlurmCliScheduler.fromConfig(conf, {});
    const checks = await s.doctor();
    expect(checks.every((c) => c.ok)).toBe(true);
    expect(checks.map((c) => c.what)).toEqual([...SLURM_TOOLS, "slurm-conf", "Slurm version", "jobs run as", "slurmctld answers squeue"]);
    expect(checks.find((c) => c.what === "Slurm version")?.detail).toBe(lab.slurmVersion.split(" ").pop()); // e.g. 22.05.8
  });
});
