// Self-test of the real OpenPBS lab (test/lab/pbs.ts): a job submitted with qsub
// by the unprivileged test user runs (R) and finishes (F, Exit_status 0, its
// output copied back); qdel ends a running job and its processes; a second lab
// runs beside the first, and when its test process is SIGKILLed the watchdog
// removes it (killed together with its watchdog: the next start does); stop()
// leaves no process, namespace, interface, /etc/hosts line or directory behind.
// The first run on a machine builds OpenPBS (10–20 min).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { startPbsLab, type PbsLab } from "../lab/pbs.ts";
import { cleanupStale, netnsPids, type NetnsState } from "../lab/pbs-netns.ts";
import { isAlive, sleep, trySignal, waitUntil } from "../lab/proc.ts";

let lab: PbsLab;
const report: string[] = [];
const note = (s: string): void => {
  report.push(s);
  console.log(`[pbs-lab] ${s}`);
};

const exeOf = (pid: number): string => {
  try {
    return fs.readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return "";
  }
};
const cmdlineOf = (pid: number): string => {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "latin1").replaceAll("\0", " ").trim();
  } catch {
    return "";
  }
};
const interfaceExists = (name: string): boolean => fs.existsSync(`/sys/class/net/${name}`);
const hostsMention = (name: string): boolean => fs.readFileSync("/etc/hosts", "utf8").split(/\s+/).includes(name);

/** Everything a lab leaves on the host that must be gone after it ends. */
function leftovers(ns: NetnsState, root: string, pids: number[]): string[] {
  const out: string[] = [];
  const alive = pids.filter((p) => isAlive(p));
  if (alive.length > 0) out.push(`processes ${alive.map((p) => `${p} ${cmdlineOf(p)}`).join("; ")}`);
  if (netnsPids(ns.ino).length > 0) out.push("processes in the namespace");
  if (fs.existsSync(`/run/netns/${ns.netns}`)) out.push(`netns ${ns.netns}`);
  if (interfaceExists(ns.hostIf)) out.push(`interface ${ns.hostIf}`);
  if (hostsMention(ns.nsHost) || hostsMention(ns.hostHost)) out.push("/etc/hosts lines");
  if (fs.existsSync(root)) out.push(`dir ${root}`);
  return out;
}

/** A test process (pbs-killed-runner.ts) with a lab of its own, started and waiting. */
async function startLabInChild(watchdog: boolean): Promise<{
  child: Bun.Subprocess; info: { root: string; netns: NetnsState; stateFile: string; pids: number[] };
}> {
  const child = Bun.spawn([process.execPath, path.join(import.meta.dir, "pbs-killed-runner.ts")], {
    stdout: "pipe",
    stderr: "inherit",
    env: { ...process.env, NSH_LAB_WATCHDOG: watchdog ? "1" : "0" },
  });
  const first = await child.stdout.getReader().read();
  const line = new TextDecoder().decode(first.value ?? new Uint8Array()).trim();
  if (!line) throw new Error(`the child lab did not start (exit ${await child.exited})`);
  return { child, info: JSON.parse(line) };
}

beforeAll(async () => {
  const t0 = performance.now();
  lab = await startPbsLab();
  note(`start ${Math.round(performance.now() - t0)} ms (${JSON.stringify(lab.startMs)})`);
}, 60 * 60_000);

afterAll(async () => {
  await lab?.stop();
  if (report.length > 0) console.log(`\n[pbs-lab] summary\n  ${report.join("\n  ")}`);
});

describe("PBS lab", () => {
  test("server, scheduler, comm, MoM and the datastore all run inside the lab's namespace", () => {
    const exes = lab.pids().map(exeOf);
    for (const d of ["pbs_server.bin", "pbs_sched", "pbs_comm", "pbs_mom"]) {
      expect(exes, d).toContain(path.join(lab.exec, "sbin", d));
    }
    expect(exes.some((e) => e.endsWith("/postgres"))).toBe(true);
    expect(lab.env.PATH?.split(":")[0]).toBe(path.join(lab.exec, "bin"));
    expect(fs.readFileSync(lab.confFile, "utf8")).toContain(`PBS_SERVER=${lab.serverHost}\n`);
  });

  test("qsub as the test user: the job runs (R), then finishes (F, Exit_status 0) with its output", async () => {
    const go = path.join(lab.jobsDir, "go");
    const script =
      `#!/bin/sh\n#PBS -N hello\nwhile [ ! -e ${go} ]; do sleep 0.2; done\necho "hello from $(id -un) $PBS_JOBID"\n`;
    const t0 = performance.now();
    const id = await lab.qsub(["-l", "walltime=00:05:00"], script);
    expect(id).toMatch(new RegExp(`^\\d+\\.${lab.serverHost}$`));
    expect(await lab.waitState(id, ["R"], 60_000)).toBe("R");
    const toRunning = Math.round(performance.now() - t0);
    fs.writeFileSync(go, "");
    expect(await lab.waitState(id, ["F"], 60_000)).toBe("F");
    note(`qsub -> R ${toRunning} ms, -> F ${Math.round(performance.now() - t0)} ms (polling qstat, machine loaded)`);
    const job = await lab.qstat(id);
    expect(job?.Exit_status).toBe(0);
    expect(job?.Job_Owner).toStartWith(`${lab.user.name}@`);
    const out = path.join(lab.jobsDir, `hello.o${id.split(".")[0]}`);
    expect(await waitUntil(() => fs.existsSync(out), 30_000)).toBe(true);
    expect(fs.readFileSync(out, "utf8")).toBe(`hello from ${lab.user.name} ${id}\n`);
  });

  test("qdel of a running job ends it and its processes", async () => {
    const id = await lab.qsub(["-N", "long", "-l", "walltime=00:10:00", "--", "/bin/sleep", "301"]);
    expect(await lab.waitState(id, ["R"], 60_000)).toBe("R");
    const sleeper = (): number[] => lab.pids().filter((p) => cmdlineOf(p) === "/bin/sleep 301");
    expect(await waitUntil(() => sleeper().length > 0, 30_000)).toBe(true);
    const t0 = performance.now();
    const r = await lab.qdel(id);
    expect(r.code, r.stderr).toBe(0);
    expect(await lab.waitState(id, ["F"], 60_000)).toBe("F");
    expect(await waitUntil(() => sleeper().length === 0, 30_000)).toBe(true);
    const exit = (await lab.qstat(id))?.Exit_status;
    note(`qdel -> F and process gone ${Math.round(performance.now() - t0)} ms; Exit_status ${exit}`);
  });

  test("a second lab runs beside the first; SIGKILL of its test process: the watchdog removes it", async () => {
    const { child, info } = await startLabInChild(true);
    expect(info.netns.netns).not.toBe(lab.netns.netns);
    expect(info.pids.length).toBeGreaterThan(4);
    // both labs answer at once
    const other = await lab.run(["qstat", "-B"], { env: { PBS_CONF_FILE: path.join(info.root, "pbs.conf") } });
    expect(other.code, other.stderr).toBe(0);
    expect(other.stdout).toContain(info.netns.nsHost);
    const t0 = performance.now();
    trySignal(child.pid, "SIGKILL");
    await child.exited;
    const gone = await waitUntil(() => leftovers(info.netns, info.root, info.pids).length === 0, 90_000, 250);
    expect(gone, leftovers(info.netns, info.root, info.pids).join(", ")).toBe(true);
    expect(fs.existsSync(info.stateFile)).toBe(false);
    note(`killed runner's lab removed by the watchdog ${Math.round(performance.now() - t0)} ms after SIGKILL`);
    const mine = await lab.run(["qstat", "-B"]);
    expect(mine.code, mine.stderr).toBe(0);
  }, 10 * 60_000);

  test("a run killed with its watchdog: the next start removes what it left, and only that", async () => {
    const { child, info } = await startLabInChild(false);
    trySignal(child.pid, "SIGKILL");
    await child.exited;
    await sleep(1000);
    expect(leftovers(info.netns, info.root, info.pids)).not.toEqual([]); // nobody cleaned up
    const removed = await cleanupStale(); // what startPbsLab does first
    expect(removed).toEqual([info.netns.id]);
    expect(leftovers(info.netns, info.root, info.pids)).toEqual([]);
    const mine = await lab.run(["qstat", "-B"]);
    expect(mine.code, mine.stderr).toBe(0);
  }, 10 * 60_000);

  test("stop() leaves no process, namespace, interface, /etc/hosts line or directory", async () => {
    const pids = lab.pids();
    expect(pids.length).toBeGreaterThan(4);
    const res = await lab.stop();
    note(`stop ${res.ms} ms (${res.killed} processes)`);
    expect(res.left).toEqual([]);
    expect(leftovers(lab.netns, lab.root, pids)).toEqual([]);
    expect(fs.existsSync(path.join("/run/nsh-lab/pbs", `${lab.id}.json`))).toBe(false);
  });
});
