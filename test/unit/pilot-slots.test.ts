// Expected (pilot-builds-per-job = K): a K-slot pilot job asks for K times one build's CPUs (1 when
// the build asks for none) and K times its memory per node when it asks for memory, in each
// backend's words; its script starts K agents (slot 0 in the job's directory, slot i in a
// subdirectory, slots > 0 leaving after pilot-idle-time when no build comes) and waits for all.
// K = 1 (or pilots off) gives exactly today's job. K is part of the pilot's shape. Counting jobs
// against pilot-max-jobs, the slots of one job count once; an idle slot of a live job is taken. A
// hook whose own job is pending looks only for an idle slot (it never reserves another job).
import { expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseAgentArgs } from "../../src/agent/protocol.ts";
import { jobDir, jobSpec } from "../../src/hook/job-plan.ts";
import { pilotResourceKey } from "../../src/hook/pilot-key.ts";
import { pilotSlots, scaleForSlots, slotDir, slotsScript } from "../../src/hook/pilot-slots.ts";
import { parseDerivation } from "../../src/nix/derivation.ts";
import type { JsonObject } from "../../src/schedulers/scheduler.ts";
import { openStateDb } from "../../src/state/db.ts";
import { choosePilot, offerPilot, type PilotRow, takePilot } from "../../src/state/pilots.ts";

test.each<[string, JsonObject | undefined, string, number, JsonObject | undefined]>([
  ["K = 1: unchanged", { cpus_per_task: 2 }, "extraSlurmParams", 1, { cpus_per_task: 2 }],
  ["Slurm, nothing asked: K CPUs", undefined, "extraSlurmParams", 4, { cpus_per_task: 4 }],
  ["Slurm, 2 CPUs and 1000 MiB each", { cpus_per_task: 2, memory_per_node: 1000, partition: "p" }, "extraSlurmParams", 4,
    { cpus_per_task: 8, memory_per_node: 4000, partition: "p" }],
  ["Slurm, memory per CPU grows with the CPUs", { memory_per_cpu: 500 }, "extraSlurmParams", 3,
    { memory_per_cpu: 500, cpus_per_task: 3 }],
  ["Slurm, memory as text", { memory_per_node: "2G" }, "extraSlurmParams", 2, { memory_per_node: "4G", cpus_per_task: 2 }],
  ["Slurm, an amount nsh cannot read stays", { memory_per_node: { number: 5, set: true } }, "extraSlurmParams", 2,
    { memory_per_node: { number: 5, set: true }, cpus_per_task: 2 }],
  ["slurm-native", { cpus: 2, memPerNode: "8G" }, "slurmNativeConstraints", 4, { cpus: 8, memPerNode: "32G" }],
  ["PBS: text values", { mem: "2gb" }, "pbsResources", 3, { mem: "6gb", ncpus: "3" }],
  ["PBS: ncpus given", { ncpus: "2", walltime: "1:00:00" }, "pbsResources", 2, { ncpus: "4", walltime: "1:00:00" }],
  ["an attribute nsh does not know: unchanged", { x: 1 }, "otherParams", 4, { x: 1 }],
])("job size: %s", (_what, extra, attr, k, out) => expect(scaleForSlots(extra, attr, k)).toEqual(out));

test.each<[number, number, number]>([
  [1, 20, 1], [4, 20, 4], [0, 20, 1], [4, 0, 1],
])("pilot-builds-per-job %d with pilot-idle-time %d: %d slots", (k, idle, out) => expect(pilotSlots(k, idle)).toBe(out));

const drvPath = "/nix/store/ffffffffffffffffffffffffffffffff-a.drv";
const drv = parseDerivation(
  `Derive([("out","/nix/store/ffffffffffffffffffffffffffffffff-a","","")],[],[],"x86_64-linux","/bin/sh",["-c","echo"],[])`,
);
const specOf = (pilotSlots?: number, key = "k1") =>
  jobSpec({
    drvPath, drv, stateDir: "/st", key, agentPath: "/st/bin/nsh-a", remoteStore: "auto", nixBinDir: "", collectGarbage: false,
    buildTimeout: 0, paramsAttr: "extraSlurmParams", pilotIdleSec: 20, ...(pilotSlots === undefined ? {} : { pilotSlots }),
  });

test("K = 1 is today's job: one exec'd agent, no CPUs asked", () => {
  expect(specOf(1)).toEqual(specOf());
  expect(specOf(1).script).toContain("exec /st/bin/nsh-a __agent /st/jobs/k1 --pilot-idle 20\n");
  expect(specOf(1).extra).toBeUndefined();
});

test("K = 3: three agents in their own directories, the script waits for all, 3 CPUs", () => {
  const spec = specOf(3);
  const lines = spec.script.split("\n").filter((l) => l.endsWith(" &"));
  expect(lines.length).toBe(3);
  // no word here needs quoting: the words are split at spaces
  const args = lines.map((l) => parseAgentArgs(l.slice(0, -2).split(" ").slice(2)));
  expect(args.map((a) => a.jobDir)).toEqual(["/st/jobs/k1", "/st/jobs/k1/s1", "/st/jobs/k1/s2"]);
  expect(args.map((a) => a.pilotIdleMs)).toEqual([20_000, 20_000, 20_000]);
  // slot 0 waits for its own hook as any job's agent; the others only as long as an idle pilot
  expect(args.map((a) => a.firstContactTimeoutMs)).toEqual([600_000, 20_000, 20_000]);
  expect(spec.script.trim().split("\n").pop()).toBe("wait");
  expect(spec.extra).toEqual({ cpus_per_task: 3 });
  expect(slotDir("/st/jobs/k1", 0)).toBe("/st/jobs/k1");
  expect(slotsScript("/a", [["x"], ["y z"]]).split("\n").slice(2)).toEqual(["/a x &", "/a 'y z' &", "wait", ""]);
});

test("K is part of the pilot's shape; the same K for another build is the same shape", () => {
  const key = (k: number, build = "k1") => pilotResourceKey("e", specOf(k, build), jobDir("/st", build), k);
  expect(key(4)).toBe(key(4, "k2"));
  expect(key(4)).not.toBe(key(1));
  expect(key(4)).not.toBe(key(2));
  // K = 1 keys as before the setting existed
  expect(key(1)).toBe(pilotResourceKey("e", specOf(), jobDir("/st", "k1")));
});

const now = 1_000_000_000_000;
const job0 = { jobId: "7", node: "n", dir: "/d", agentPath: "/a", endsAt: null, limitMs: null, idleUntil: now + 9000, builds: 0 };
let n = 0;
const row = (jobId: string | undefined, busy: boolean): PilotRow => ({
  slot: ++n, endpoint: "e", resourceKey: "K", busy, pid: 1, startTime: 1,
  ...(jobId ? { job: { ...job0, jobId, dir: `/d/${n}` } } : {}),
});
const pick = (rows: PilotRow[], maxJobs: number) => {
  const c = choosePilot(rows, { endpoint: "e", resourceKey: "K", needMs: 0, marginMs: 60_000, maxJobs }, now);
  return "take" in c ? `take ${c.take.job!.jobId}` : "submit" in c ? "submit" : `wait ${c.wait}`;
};
test.each<[string, PilotRow[], number, string]>([
  ["one job's 4 busy slots are one job: below a cap of 2, submit", [1, 2, 3, 4].map(() => row("7", true)), 2, "submit"],
  ["two jobs' busy slots at a cap of 2: wait", [row("7", true), row("7", true), row("8", true)], 2, "wait 2"],
  ["a job being submitted counts once, next to a running one", [row(undefined, true), row("7", true)], 2, "wait 2"],
  ["at the cap, an idle slot of a live job: take it", [row("7", true), row("8", true), row("8", false)], 2, "take 8"],
])("slot choice: %s", (_what, rows, maxJobs, out) => expect(pick(rows, maxJobs)).toBe(out));

test("a hook whose own job is pending looks for an idle slot only: it never reserves another job", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-slots-"));
  try {
    const db = openStateDb(dir);
    const w = { endpoint: "e", resourceKey: "K", needMs: 0, marginMs: 60_000, maxJobs: 0 };
    expect(await takePilot(db, w, now, () => true, true)).toEqual({ wait: 0 });
    const reserved = await takePilot(db, w, now, () => true);
    expect("submit" in reserved).toBe(true);
    const slot = (reserved as { submit: number }).submit;
    await offerPilot(db, slot, job0);
    const taken = await takePilot(db, w, now, () => true, true);
    expect("take" in taken && taken.take.job?.jobId).toBe("7");
    db.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
