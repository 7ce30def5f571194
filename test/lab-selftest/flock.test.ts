// The lab's file lock (test/lab/flock.ts), which serialises the OpenPBS build and
// /etc/hosts edits across test processes: holders never overlap, a held lock
// makes a waiter time out with a clear message, and the lock of a test process
// that is SIGKILLed is free again.
import { afterAll, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { lockFile, withFileLock } from "../lab/flock.ts";
import { sleep } from "../lab/proc.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-flock-"));
const lock = path.join(dir, "x.lock");
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test("two holders never overlap", async () => {
  const events: string[] = [];
  const holder = (name: string) =>
    withFileLock(lock, 30_000, async () => {
      events.push(`${name}+`);
      await sleep(300);
      events.push(`${name}-`);
    });
  await Promise.all([holder("a"), holder("b")]);
  expect(events.length).toBe(4);
  expect(events[0]!.slice(0, 1)).toBe(events[1]!.slice(0, 1));
  expect(events[2]!.slice(0, 1)).toBe(events[3]!.slice(0, 1));
});

test("a held lock: the waiter gives up after its timeout, naming the lock", async () => {
  const held = await lockFile(lock, 10_000);
  try {
    await expect(lockFile(lock, 1000, "the test lock")).rejects.toThrow(/could not lock the test lock .* within 1 s/);
  } finally {
    await held.release();
  }
  const again = await lockFile(lock, 5000);
  await again.release();
});

test("the lock of a SIGKILLed process is free again", async () => {
  const child = Bun.spawn([
    process.execPath, "-e",
    `const { lockFile } = await import(${JSON.stringify(path.join(import.meta.dir, "..", "lab", "flock.ts"))});
     await lockFile(${JSON.stringify(lock)}, 10000); console.log("held"); setInterval(() => {}, 1000);`,
  ], { stdout: "pipe", env: { ...process.env, NSH_LAB_WATCHDOG: "0" } });
  const reader = child.stdout.getReader();
  expect(new TextDecoder().decode((await reader.read()).value)).toContain("held");
  await expect(lockFile(lock, 1000)).rejects.toThrow(/could not lock/);
  child.kill("SIGKILL");
  await child.exited;
  const t0 = performance.now();
  const mine = await lockFile(lock, 20_000);
  await mine.release();
  console.log(`[flock] lock free ${Math.round(performance.now() - t0)} ms after SIGKILL of its holder`);
});
