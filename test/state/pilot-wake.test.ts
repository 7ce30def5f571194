// Expected: a slot handed to one waiting build wakes that build alone (its own wake file), not
// every build waiting at pilot-max-jobs; a waiter's file goes when it stops waiting, and files
// that killed waiters left behind are swept after an hour. Waking a waiter that is gone is no error.
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { WAKE_DIR, waiterAlarm, wakeWaiters } from "../../src/state/pilot-waiters.ts";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-pilot-wake-"));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** ms until the alarm rang, or "slept" when it ran to its timeout. */
async function rang(p: Promise<void>, t0: number, timeoutMs: number): Promise<number | "slept"> {
  await p;
  const ms = Date.now() - t0;
  return ms >= timeoutMs - 20 ? "slept" : ms;
}

test("a hand-over wakes its waiter only", async () => {
  const alarms = [1, 2, 3].map((id) => waiterAlarm(root, id));
  try {
    const t0 = Date.now();
    const waits = alarms.map((a) => rang(a.next(1500), t0, 1500));
    await Bun.sleep(50);
    wakeWaiters(root, [2]);
    const [a, b, c] = await Promise.all(waits);
    expect(a).toBe("slept");
    expect(c).toBe("slept");
    expect(b).not.toBe("slept");
    expect(b as number).toBeLessThan(1000);
  } finally {
    for (const a of alarms) a.close();
  }
  expect(fs.readdirSync(path.join(root, WAKE_DIR))).toEqual([]);
});

test("waking a waiter that is gone makes no file and throws nothing", () => {
  wakeWaiters(root, [99]);
  wakeWaiters(path.join(root, "no-such-dir"), [1]);
  expect(fs.existsSync(path.join(root, WAKE_DIR, "99"))).toBe(false);
});

test("a killed waiter's file is swept by a later waiter after an hour", () => {
  const dir = path.join(root, WAKE_DIR);
  fs.mkdirSync(dir, { recursive: true });
  const old = path.join(dir, "7");
  const recent = path.join(dir, "8");
  fs.writeFileSync(old, "");
  fs.writeFileSync(recent, "");
  const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
  fs.utimesSync(old, twoHoursAgo, twoHoursAgo);
  const a = waiterAlarm(root, 9);
  a.close();
  expect(fs.readdirSync(dir).sort()).toEqual(["8"]);
});
