// Nix's lock on a store path (libstore/pathlocks.cc, the same in 2.8 and master): an exclusive BSD
// flock on `<real path>.lock`. Whoever builds, substitutes or imports a path holds it, and the
// garbage collector leaves an invalid path alone while it is held. Nix deletes a lock file when it
// releases it, writing a byte into it first so that a waiter that opened it before the unlink sees
// it is stale (non-empty) and opens the file again; we do the same both ways (and remove a marked
// file that is still in place, where Nix would retry forever).
import fs from "node:fs";
import { flock, LOCK_EX, LOCK_NB } from "../sys/libc.ts";

export interface PathLock {
  release(): void;
}

export const lockFileOf = (realPath: string) => `${realPath}.lock`;

/**
 * Takes the lock on the store path whose files are at `realPath`, waiting as long as another
 * process holds it (polling: a blocking flock would stop the event loop, and with it the sessions
 * that feed the import). `onWait` is called once, when the lock is found taken.
 */
export async function lockStorePath(realPath: string, onWait?: () => void): Promise<PathLock> {
  const file = lockFileOf(realPath);
  let delayMs = 20;
  let waited = false;
  for (;;) {
    const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
    let got = false;
    try {
      got = flock(fd, LOCK_EX | LOCK_NB);
      if (got) {
        const st = fs.fstatSync(fd);
        if (st.size === 0) return { release: () => releaseLock(file, fd) };
        // Stale: its holder unlinked it after we opened it, and the next open makes a fresh one.
        // If it is still in place (the unlink failed), no one can use it: remove it, as we hold it.
        if (sameFile(file, st)) fs.unlinkSync(file);
      }
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
    fs.closeSync(fd);
    if (got) continue;
    if (!waited) onWait?.();
    waited = true;
    await Bun.sleep(delayMs);
    delayMs = Math.min(delayMs * 2, 500);
  }
}

function sameFile(file: string, st: fs.Stats): boolean {
  try {
    const now = fs.statSync(file);
    return now.ino === st.ino && now.dev === st.dev;
  } catch {
    return false;
  }
}

function releaseLock(file: string, fd: number): void {
  try {
    fs.unlinkSync(file);
  } catch {}
  try {
    fs.writeSync(fd, "d");
  } catch {}
  fs.closeSync(fd); // drops the flock
}
