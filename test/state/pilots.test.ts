// Expected: a hook looking for a pilot takes the idle one of its endpoint and shape that fits and
// was idle longest; with none, it may submit while fewer than pilot-max-jobs of its shape live (no
// cap: always), else it waits. Idle pilots past their idle time, and busy ones whose hook is gone,
// are forgotten. Through the real database: a pilot is taken whole by one hook (two connections at
// once: one wins), offering lists it idle again, dropping frees its slot for a submit. A hook told
// to wait is queued: a slot offered idle is handed to the longest-waiting live hook of its shape
// (not to a newcomer), a slot handed to a hook that died goes to the next, and a hook that leaves
// the queue passes on what it was handed. A waiter's place in line (how often it looks) counts only
// the waiters of its shape before it that have no slot yet.
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { openStateDb } from "../../src/state/db.ts";
import { addWaiter, chooseWaiter, listWaiters, type Waiter, waiterPace } from "../../src/state/pilot-waiters.ts";
import {
  choosePilot, dropPilot, leavePilotQueue, listPilots, offerPilot, type PilotJob, type PilotRow, type PilotWant,
  pilotQueuePlace, stalePilot, takePilot,
} from "../../src/state/pilots.ts";
import { readStartTime } from "../../src/sys/proc.ts";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-pilots-"));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDb = () => {
  const dir = path.join(root, `d${n++}`);
  fs.mkdirSync(dir, { mode: 0o700 });
  return openStateDb(dir);
};

const now = 1_000_000_000_000;
const job = (o: Partial<PilotJob> = {}): PilotJob => ({
  jobId: "1", node: "n1", dir: "/st/jobs/a", agentPath: "/st/bin/nsh", endsAt: null, limitMs: null, idleUntil: now + 30_000, builds: 1, ...o,
});
let slots = 0;
const idle = (o: Partial<PilotJob> = {}, r: Partial<PilotRow> = {}): PilotRow => ({
  slot: ++slots, endpoint: "e", resourceKey: "K", job: job(o), busy: false, pid: 1, startTime: 1, ...r,
});
const busy = (r: Partial<PilotRow> = {}): PilotRow => ({ slot: ++slots, endpoint: "e", resourceKey: "K", busy: true, pid: 1, startTime: 1, ...r });
const want = (o: Partial<PilotWant> = {}): PilotWant => ({ endpoint: "e", resourceKey: "K", needMs: 0, marginMs: 60_000, maxJobs: 0, ...o });
const pick = (rows: PilotRow[], w: PilotWant) => {
  const c = choosePilot(rows, w, now);
  return "take" in c ? `take ${c.take.job!.jobId}` : "submit" in c ? "submit" : `wait ${c.wait}`;
};

test.each<[string, PilotRow[], PilotWant, string]>([
  ["nothing known, no cap", [], want(), "submit"],
  ["nothing known, cap 2", [], want({ maxJobs: 2 }), "submit"],
  ["one idle of the shape", [idle({ jobId: "7" })], want(), "take 7"],
  ["the one idle longest first", [idle({ jobId: "late", idleUntil: now + 9000 }), idle({ jobId: "early", idleUntil: now + 6000 })], want(), "take early"],
  ["another shape is not taken", [idle({ jobId: "7" }, { resourceKey: "L" })], want(), "submit"],
  ["another endpoint is not taken", [idle({ jobId: "7" }, { endpoint: "f" })], want(), "submit"],
  ["too little time left is not taken", [idle({ jobId: "7", endsAt: now + 30_000, limitMs: 3600_000 })], want(), "submit"],
  ["busy ones below the cap: submit", [busy()], want({ maxJobs: 2 }), "submit"],
  ["busy ones at the cap: wait", [busy(), busy()], want({ maxJobs: 2 }), "wait 2"],
  ["another shape's do not count", [busy(), busy({ resourceKey: "L" })], want({ maxJobs: 2 }), "submit"],
  ["at the cap, one idle: take it", [busy(), idle({ jobId: "7" })], want({ maxJobs: 2 }), "take 7"],
  ["at the cap with one too near its limit: submit", [busy(), idle({ jobId: "7", endsAt: now + 1000, limitMs: 3600_000 })], want({ maxJobs: 2 }), "submit"],
])("%s", (_what, rows, w, out) => expect(pick(rows, w)).toBe(out));

test.each<[string, PilotRow, boolean, boolean]>([
  ["idle, within its idle time", idle(), true, false],
  ["idle, past its idle time", idle({ idleUntil: now }), true, true],
  ["busy, its hook alive", busy(), true, false],
  ["busy, its hook gone", busy(), false, true],
])("stale: %s", (_what, row, alive, stale) => expect(stalePilot(row, now, () => alive)).toBe(stale));

test("through the database: reserve, wait in the queue, be handed the offered slot, drop", async () => {
  const db = freshDb();
  const w = want({ maxJobs: 1 });
  const first = await takePilot(db, w, now);
  expect("submit" in first).toBe(true);
  const slot = (first as { submit: number }).submit;
  const queued = (await takePilot(db, w, now)) as { wait: number; waiter: number };
  expect(queued.wait).toBe(1);
  expect((await pilotQueuePlace(db, queued.waiter))?.granted).toBe(false);
  expect(await offerPilot(db, slot, job({ jobId: "42" }))).toBe(process.pid);
  expect((await pilotQueuePlace(db, queued.waiter))?.granted).toBe(true);
  // A newcomer does not get the slot handed to the queued hook.
  const newcomer = (await takePilot(db, w, now)) as { wait: number; waiter: number };
  expect(newcomer.wait).toBe(1);
  const got = await takePilot(db, w, now, undefined, false, queued.waiter);
  expect("take" in got && got.take.job?.jobId).toBe("42");
  await leavePilotQueue(db, newcomer.waiter);
  await dropPilot(db, slot);
  expect("submit" in (await takePilot(db, w, now))).toBe(true);
  db.close();
});

test("an offered slot with nobody waiting stays idle and is taken by the next look", async () => {
  const db = freshDb();
  const w = want({ maxJobs: 1 });
  const slot = ((await takePilot(db, w, now)) as { submit: number }).submit;
  expect(await offerPilot(db, slot, job({ jobId: "43" }))).toBeUndefined();
  const got = await takePilot(db, w, now);
  expect("take" in got && got.take.job?.jobId).toBe("43");
  db.close();
});

test("a waiter's place: waiters of its shape before it without a slot", async () => {
  const db = freshDb();
  const w = want({ maxJobs: 1 });
  const slot = ((await takePilot(db, w, now)) as { submit: number }).submit;
  const a = ((await takePilot(db, w, now)) as { waiter: number }).waiter;
  const me = { pid: process.pid, startTime: readStartTime(process.pid)! };
  const other = await db.write("t", (d) => addWaiter(d, { endpoint: "e", resourceKey: "L", needMs: 0, marginMs: 0, ...me }));
  const b = ((await takePilot(db, w, now)) as { waiter: number }).waiter;
  const c = ((await takePilot(db, w, now)) as { waiter: number }).waiter;
  expect(await pilotQueuePlace(db, a)).toEqual({ granted: false, ahead: 0 });
  expect(await pilotQueuePlace(db, other)).toEqual({ granted: false, ahead: 0 });
  expect(await pilotQueuePlace(db, c)).toEqual({ granted: false, ahead: 2 });
  await offerPilot(db, slot, job({ jobId: "45" }));
  expect(await pilotQueuePlace(db, a)).toEqual({ granted: true, ahead: 0 });
  expect(await pilotQueuePlace(db, b)).toEqual({ granted: false, ahead: 0 });
  expect(await pilotQueuePlace(db, c)).toEqual({ granted: false, ahead: 1 });
  await leavePilotQueue(db, c);
  expect(await pilotQueuePlace(db, c)).toBeUndefined();
  db.close();
});

test.each<[string, number, { relookMs: number; readMs: number }]>([
  ["first in line: a full look every 2 s, its row every 1 s", 0, { relookMs: 2000, readMs: 1000 }],
  ["fourth in line: the same", 3, { relookMs: 2000, readMs: 1000 }],
  ["fifth and further: a full look every 30 s, its row every 3 s", 4, { relookMs: 30_000, readMs: 3000 }],
  ["200th", 199, { relookMs: 30_000, readMs: 3000 }],
])("waiter pace: %s", (_what, ahead, pace) => expect(waiterPace(ahead)).toEqual(pace));

test("queued hooks are handed slots in the order they came; one that leaves passes its slot on", async () => {
  const db = freshDb();
  const w = want({ maxJobs: 1 });
  const slot = ((await takePilot(db, w, now)) as { submit: number }).submit;
  const a = ((await takePilot(db, w, now)) as { waiter: number }).waiter;
  const b = ((await takePilot(db, w, now)) as { waiter: number }).waiter;
  const c = ((await takePilot(db, w, now)) as { waiter: number }).waiter;
  await offerPilot(db, slot, job({ jobId: "44" }));
  const granted = async (id: number) => (await pilotQueuePlace(db, id))?.granted;
  expect([await granted(a), await granted(b), await granted(c)]).toEqual([true, false, false]);
  await leavePilotQueue(db, a);
  expect([await granted(b), await granted(c)]).toEqual([true, false]);
  expect(await takePilot(db, w, now, undefined, false, c)).toMatchObject({ wait: 1, waiter: c });
  const got = await takePilot(db, w, now, undefined, false, b);
  expect("take" in got && got.take.slot).toBe(slot);
  db.close();
});

test("a slot handed to a hook that died goes to the next queued hook", async () => {
  const db = freshDb();
  const w = want({ maxJobs: 1 });
  const slot = ((await takePilot(db, w, now)) as { submit: number }).submit;
  const doomed = Bun.spawn(["sleep", "60"]);
  await Bun.sleep(20);
  const startTime = readStartTime(doomed.pid)!;
  const dead = await db.write("queueing a hook", (d) => addWaiter(d, { ...w, pid: doomed.pid, startTime }));
  const mine = ((await takePilot(db, w, now)) as { waiter: number }).waiter;
  await offerPilot(db, slot, job({ jobId: "45" }));
  expect((await pilotQueuePlace(db, dead))?.granted).toBe(true);
  expect((await pilotQueuePlace(db, mine))?.granted).toBe(false);
  doomed.kill(9);
  await doomed.exited;
  // The next look (anyone's) finds the dead hook's slot and hands it on; here the next queued hook's own.
  const took = await takePilot(db, w, now, undefined, false, mine);
  expect("take" in took && took.take.job?.jobId).toBe("45");
  db.close();
});

test("a hook killed while waiting leaves the queue at the next look", async () => {
  const db = freshDb();
  const w = want({ maxJobs: 1 });
  await takePilot(db, w, now);
  const doomed = Bun.spawn(["sleep", "60"]);
  await Bun.sleep(20);
  const startTime = readStartTime(doomed.pid)!;
  const dead = await db.write("queueing a hook", (d) => addWaiter(d, { ...w, pid: doomed.pid, startTime }));
  doomed.kill(9);
  await doomed.exited;
  const mine = ((await takePilot(db, w, now)) as { waiter: number }).waiter;
  const ids = (await db.read("listing", (d) => listWaiters(d))).map((x) => x.id);
  expect(ids).toEqual([mine]);
  expect(ids).not.toContain(dead);
  db.close();
});

const waiter = (o: Partial<Waiter>): Waiter => ({
  id: 1, endpoint: "e", resourceKey: "K", needMs: 0, marginMs: 0, pid: 1, startTime: 1, granted: null, ...o,
});
test.each<[string, Waiter[], string | undefined]>([
  ["nobody", [], undefined],
  ["the oldest", [waiter({ id: 5 }), waiter({ id: 3 })], "3"],
  ["not one already handed a slot", [waiter({ id: 3, granted: 9 }), waiter({ id: 5 })], "5"],
  ["not another shape", [waiter({ id: 3, resourceKey: "L" }), waiter({ id: 5 })], "5"],
  ["not one whose build does not fit", [waiter({ id: 3, needMs: 99 }), waiter({ id: 5 })], "5"],
  ["not a dead one", [waiter({ id: 3, pid: 666 }), waiter({ id: 5 })], "5"],
])("a slot goes to: %s", (_what, ws, out) => {
  const chosen = chooseWaiter(ws, { endpoint: "e", resourceKey: "K" }, (w) => w.needMs < 50, (w) => w.pid !== 666);
  expect(chosen ? String(chosen.id) : undefined).toBe(out);
});

test("a busy pilot whose hook is gone, and an idle one past its idle time, are forgotten", async () => {
  const db = freshDb();
  const w = want({ maxJobs: 1 });
  const r = (await takePilot(db, w, now)) as { submit: number };
  const queued = (await takePilot(db, w, now, () => true)) as { wait: number; waiter: number };
  expect(queued.wait).toBe(1);
  expect("submit" in (await takePilot(db, w, now, () => false))).toBe(true);
  await leavePilotQueue(db, queued.waiter);
  expect((await listPilots(db)).map((p) => p.slot)).not.toContain(r.submit);
  const s2 = (await listPilots(db))[0]!.slot;
  await offerPilot(db, s2, job({ idleUntil: now + 1000 }));
  expect("submit" in (await takePilot(db, w, now + 1000))).toBe(true);
  db.close();
});

test("two connections take one idle pilot: one wins", async () => {
  const dir = path.join(root, "shared");
  fs.mkdirSync(dir, { mode: 0o700 });
  const a = openStateDb(dir);
  const b = openStateDb(dir);
  const w = want({ maxJobs: 1 });
  const r = (await takePilot(a, w, now)) as { submit: number };
  await offerPilot(a, r.submit, job());
  const got = await Promise.all([takePilot(a, w, now), takePilot(b, w, now)]);
  expect(got.filter((g) => "take" in g).length).toBe(1);
  expect(got.filter((g) => "wait" in g).length).toBe(1);
  a.close();
  b.close();
});
