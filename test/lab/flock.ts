// An flock(1)-held lock for lab code that runs in several test processes at
// once (the OpenPBS build, /etc/hosts edits). Bun has no flock(2), so a child
// `flock` holds the lock while it waits on our pipe: when this process dies
// for any reason the pipe closes and the kernel releases the lock.
import * as fs from "node:fs";
import * as path from "node:path";
import { killGroup, registerGroup, unregisterGroup } from "./proc.ts";

const SYS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export interface FileLock {
  release(): Promise<void>;
}

/** Take an exclusive flock on `file` (created if missing); waits up to timeoutMs. */
export async function lockFile(file: string, timeoutMs: number, what = file): Promise<FileLock> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const waitSec = Math.max(1, Math.ceil(timeoutMs / 1000));
  // `flock` exits 1 on timeout; once locked, `sh` says so and waits for our stdin to close.
  const proc = Bun.spawn(["flock", "-x", "-w", String(waitSec), file, "sh", "-c", "echo locked; exec cat >/dev/null"], {
    env: { PATH: SYS_PATH },
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
    detached: true,
  });
  registerGroup(proc.pid);
  const reader = proc.stdout.getReader();
  const first = await reader.read();
  reader.releaseLock();
  const text = first.value ? new TextDecoder().decode(first.value) : "";
  if (!text.startsWith("locked")) {
    await proc.exited;
    unregisterGroup(proc.pid);
    const err = await new Response(proc.stderr).text();
    throw new Error(`could not lock ${what} (${file}) within ${waitSec} s: flock exit ${proc.exitCode} ${err.trim()}`);
  }
  let released = false;
  return {
    async release(): Promise<void> {
      if (released) return;
      released = true;
      try {
        proc.stdin.end();
      } catch {
        // already closed
      }
      const gone = await Promise.race([proc.exited.then(() => true), Bun.sleep(5000).then(() => false)]);
      if (!gone) killGroup(proc.pid, "SIGKILL");
      unregisterGroup(proc.pid);
    },
  };
}

/** Run fn while holding the lock. */
export async function withFileLock<T>(file: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const lock = await lockFile(file, timeoutMs);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}
