// Expected: idle pilot jobs in the state database are taken whole by one hook (a taken pilot is
// no longer listed, so two hooks never share one); only a pilot of the same endpoint and resource
// key whose remaining time fits is taken; pilots past their idle time are forgotten; offering one
// again lists it with its new idle time.
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { openStateDb } from "../../src/state/db.ts";
import { claimPilot, listPilots, offerPilot, type PilotRow } from "../../src/state/pilots.ts";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-pilots-"));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDb = () => {
  const dir = path.join(root, `d${n++}`);
  fs.mkdirSync(dir, { mode: 0o700 });
  return openStateDb(dir);
};

const now = 1_000_000_000_000;
const row = (o: Partial<PilotRow>): PilotRow => ({
  endpoint: "e", jobId: "1", resourceKey: "K", node: "n1", dir: "/st/jobs/a", agentPath: "/st/bin/nsh",
  endsAt: null, limitMs: null, idleUntil: now + 30_000, builds: 1, ...o,
});

test("a pilot is taken once", async () => {
  const db = freshDb();
  await offerPilot(db, row({}));
  const got = await claimPilot(db, "e", "K", 0, 60_000, now);
  expect(got).toEqual(row({}));
  expect(await claimPilot(db, "e", "K", 0, 60_000, now)).toBeUndefined();
  expect(await listPilots(db)).toEqual([]);
  db.close();
});

test("only the same endpoint and key, fitting and still idle, is taken; expired ones are forgotten", async () => {
  const db = freshDb();
  await offerPilot(db, row({ jobId: "other-key", resourceKey: "L" }));
  await offerPilot(db, row({ jobId: "other-endpoint", endpoint: "f" }));
  await offerPilot(db, row({ jobId: "short", endsAt: now + 10_000, limitMs: 3600_000 }));
  await offerPilot(db, row({ jobId: "expired", idleUntil: now - 1 }));
  await offerPilot(db, row({ jobId: "good", idleUntil: now + 20_000 }));
  expect((await claimPilot(db, "e", "K", 0, 60_000, now))?.jobId).toBe("good");
  expect(await claimPilot(db, "e", "K", 0, 60_000, now)).toBeUndefined();
  expect((await listPilots(db)).map((p) => p.jobId).sort()).toEqual(["other-endpoint", "other-key", "short"]);
  db.close();
});

test("offering again lists the pilot with its new idle time and count", async () => {
  const db = freshDb();
  await offerPilot(db, row({}));
  const got = (await claimPilot(db, "e", "K", 0, 60_000, now))!;
  await offerPilot(db, { ...got, idleUntil: now + 90_000, builds: got.builds + 1 });
  expect(await listPilots(db)).toEqual([row({ idleUntil: now + 90_000, builds: 2 })]);
  db.close();
});

test("two processes' worth of claims on one pilot: one wins", async () => {
  const dir = path.join(root, "shared");
  fs.mkdirSync(dir, { mode: 0o700 });
  const a = openStateDb(dir);
  const b = openStateDb(dir);
  await offerPilot(a, row({}));
  const got = await Promise.all([claimPilot(a, "e", "K", 0, 60_000, now), claimPilot(b, "e", "K", 0, 60_000, now)]);
  expect(got.filter(Boolean).length).toBe(1);
  a.close();
  b.close();
});
