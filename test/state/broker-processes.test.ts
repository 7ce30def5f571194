// Expected: nsh processes following jobs through the machine-wide broker cost the scheduler one
// batched query per tick in all, not one per process or per job: only one process (the leader)
// asks at any time, each query covers every process's jobs, and every follower still sees each job
// end. Without statusMany, each job is asked about at most once per tick however many processes
// follow it. Cancels from many processes go out in fewer calls than jobs. A SIGKILLed leader is
// replaced within a bounded time and its followers keep getting states. A queue cap of 3 keeps
// this machine's pending jobs at 3 or fewer while 4 processes submit 12.
import { afterAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { openStateDb } from "../../src/state/db.ts";
import { JobWatchTable } from "../../src/state/job-watch.ts";
import { type Call, readCalls } from "./fixtures/fake-scheduler.ts";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-broker-"));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
const worker = path.join(import.meta.dir, "fixtures", "polite-worker.ts");
let n = 0;
const fresh = () => {
  const d = path.join(root, `d${n++}`);
  fs.mkdirSync(d, { mode: 0o700 });
  return { dir: d, log: path.join(d, "calls.jsonl"), cancels: path.join(d, "cancelled") };
};
const spawn = (args: (string | number)[]) => Bun.spawn([process.execPath, worker, ...args.map(String)], { stdout: "pipe", stderr: "pipe" });
async function finish(p: ReturnType<typeof spawn>): Promise<Record<string, unknown>> {
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`worker exited ${code}: ${err}`);
  return JSON.parse(out.trim().split("\n").at(-1)!);
}
const id = (start: number, end: number, tag: string) => `j${start}_${end}_0_${tag}`;

/** Leader stretches: consecutive calls by one process. One asker at a time means no process comes back. */
function stretches(calls: Call[]): number[] {
  const pids: number[] = [];
  for (const c of [...calls].sort((a, b) => a.at - b.at)) if (pids.at(-1) !== c.pid) pids.push(c.pid);
  return pids;
}

describe("one query per tick for the whole machine", () => {
  test("6 processes × 3 jobs (2 of them followed by all): statusMany only, from one process at a time", async () => {
    const f = fresh();
    const startAt = Date.now() + 2500;
    const shared = [id(startAt + 1000, startAt + 2500, "s1"), id(startAt + 1500, startAt + 3000, "s2")];
    const procs = Array.from({ length: 6 }, (_, p) => {
      const own = id(startAt + 500 + p * 200, startAt + 2000 + p * 300, `p${p}`);
      return spawn(["follow", f.dir, f.log, f.cancels, startAt, [own, ...shared].join(","), 1, 0]);
    });
    const res = await Promise.all(procs.map(finish));
    const wall = Date.now() - startAt;
    for (const r of res) expect(Object.values(r.ends as Record<string, string>)).toEqual(["completed", "completed", "completed"]);
    const calls = readCalls(f.log);
    expect(calls.filter((c) => c.call !== "statusMany")).toEqual([]);
    const leaders = stretches(calls);
    expect(new Set(leaders).size).toBe(leaders.length);
    // At most one query per 100 ms tick (plus one per leader change), however many follow.
    expect(calls.length).toBeLessThanOrEqual(wall / 100 + leaders.length + 5);
    // Batched: some query asked about all 8 jobs of the 6 processes at once.
    expect(Math.max(...calls.map((c) => c.ids.length))).toBe(8);
    console.log(`[broker] ${calls.length} statusMany calls in ${wall} ms for 6 processes following 8 jobs; leaders in turn: ${leaders.length}`);
  });

  test("without statusMany: per job, at most one status per 100 ms tick, though 3 processes follow it", async () => {
    const f = fresh();
    const startAt = Date.now() + 2500;
    const ids = [id(startAt + 800, startAt + 2000, "a"), id(startAt + 1200, startAt + 2600, "b")];
    const res = await Promise.all(Array.from({ length: 3 }, () => spawn(["follow", f.dir, f.log, f.cancels, startAt, ids.join(","), 0, 0])).map(finish));
    for (const r of res) expect(Object.values(r.ends as Record<string, string>)).toEqual(["completed", "completed"]);
    const calls = readCalls(f.log);
    expect(calls.every((c) => c.call === "status")).toBe(true);
    for (const j of ids) {
      const at = calls.filter((c) => c.ids[0] === j).map((c) => c.at).sort((a, b) => a - b);
      for (let i = 1; i < at.length; i++) expect(at[i]! - at[i - 1]!).toBeGreaterThanOrEqual(100);
    }
    const leaders = stretches(calls);
    expect(new Set(leaders).size).toBe(leaders.length);
  });
});

test("cancels from 6 processes, one job at a time each, go out in fewer calls than jobs", async () => {
  const f = fresh();
  const startAt = Date.now() + 2500;
  const cancelAt = startAt + 1500;
  const procs = Array.from({ length: 6 }, (_, p) => spawn(["follow", f.dir, f.log, f.cancels, startAt, [id(startAt + 500, startAt + 600_000, `c${p}`)].join(","), 1, cancelAt]));
  const res = await Promise.all(procs.map(finish));
  for (const r of res) expect(Object.values(r.ends as Record<string, string>)).toEqual(["cancelled"]);
  const cancels = readCalls(f.log).filter((c) => c.call === "cancelMany" || c.call === "cancel");
  expect(new Set(cancels.flatMap((c) => c.ids)).size).toBe(6);
  expect(cancels.length).toBeLessThan(6);
  console.log(`[broker] 6 cancels in ${cancels.length} call(s): ${cancels.map((c) => c.ids.length).join(" + ")}`);
});

test("a SIGKILLed leader is replaced, and the other process's job still gets states", async () => {
  const f = fresh();
  const s = openStateDb(f.dir);
  const table = new JobWatchTable(s, "ep");
  const now = Date.now();
  const a = spawn(["follow", f.dir, f.log, f.cancels, now, id(now + 300_000, now + 600_000, "a"), 1, 0]);
  try {
    const waitFor = async (what: string, ok: () => Promise<boolean>, ms = 60_000) => {
      const end = Date.now() + ms;
      while (!(await ok())) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
        await Bun.sleep(20);
      }
    };
    await waitFor("A to lead", async () => (await table.leader())?.pid === a.pid);
    const jb = id(now + 300_000, now + 600_000, "b");
    const b = spawn(["follow", f.dir, f.log, f.cancels, now, jb, 1, 0]);
    try {
      await waitFor("B's job to be followed and polled", async () => ((await table.rows([jb]))[0]?.checked_at ?? null) !== null);
      expect((await table.leader())?.pid).toBe(a.pid);
      a.kill(9);
      await a.exited;
      const killedAt = Date.now();
      // Well under the 10 s after which a silent live leader is replaced: B saw that A's pid is gone.
      await waitFor("B to take over", async () => (await table.leader())?.pid === b.pid, 5_000);
      const tookMs = Date.now() - killedAt;
      const seen = (await table.rows([jb]))[0]!.checked_at!;
      await waitFor("B's job polled again by B", async () => (await table.rows([jb]))[0]!.checked_at! > seen, 15_000);
      const byB = readCalls(f.log).filter((c) => c.pid === b.pid && c.call === "statusMany");
      expect(byB.length).toBeGreaterThan(0);
      console.log(`[broker] takeover ${tookMs} ms after SIGKILL`);
    } finally {
      b.kill(9);
      await b.exited;
    }
  } finally {
    a.kill(9);
    s.close();
  }
});

test("max-queued-jobs 3: 4 processes submitting 12 jobs never have more than 3 pending", async () => {
  const f = fresh();
  const startAt = Date.now() + 2500;
  const res = await Promise.all(Array.from({ length: 4 }, () => spawn(["submit", f.dir, f.log, f.cancels, startAt, 3, 3])).map(finish));
  for (const r of res) expect(r.ends).toEqual(["completed", "completed", "completed"]);
  const submits = readCalls(f.log).filter((c) => c.call === "submit");
  expect(submits.length).toBe(12);
  // Pending from the submit until the start its id names.
  const events = submits.flatMap((c) => [
    { at: c.at, d: 1 },
    { at: Number(c.ids[0]!.slice(1).split("_")[0]), d: -1 },
  ]);
  events.sort((x, y) => x.at - y.at || x.d - y.d);
  let pending = 0;
  let most = 0;
  for (const e of events) most = Math.max(most, (pending += e.d));
  expect(most).toBeLessThanOrEqual(3);
  expect(most).toBeGreaterThan(0);
  console.log(`[cap] 12 submits, at most ${most} pending at once`);
});
