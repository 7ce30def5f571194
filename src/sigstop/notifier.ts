// The notifier: a detached process per started build. It waits for the build's output locks
// (BSD flock, as Nix takes them) and tells the wrapper the outcome.
// It runs outside the hook's process group, because Nix SIGKILLs that group when it is done.
import fs from "node:fs";
import { LOCK_EX, LOCK_NB, LOCK_UN, flock } from "../sys/libc.ts";
import { encodeEvent, type BuildEvent } from "./events.ts";

export interface NotifyArgs {
  fifo: string;
  id: string;
  drv: string;
  reply: string;
  locks: string[];
}

/** Writes one event; a missing reader (the wrapper is gone) is not an error. */
export function sendEvent(fifo: string, e: BuildEvent): boolean {
  let fd: number;
  try {
    fd = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  } catch {
    return false;
  }
  try {
    fs.writeSync(fd, encodeEvent(e));
    return true;
  } catch {
    return false;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Waits until nobody holds the lock, then releases it at once (holding it would stall Nix).
 * True when the holder finished successfully: Nix unlinks the lock file (and marks it with a
 * byte) after a successful build; after a failure or a postponement the empty file stays.
 * The lock is tried every 100 ms rather than waited on, so that the notifier also notices when
 * its wrapper is gone (its FIFO removed) and leaves instead of outliving it.
 */
export async function waitForLock(path: string, wrapperGone: () => boolean = () => false): Promise<boolean | "abandoned"> {
  let fd: number;
  try {
    fd = fs.openSync(path, fs.constants.O_RDWR);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "ENOENT";
  }
  try {
    while (!flock(fd, LOCK_EX | LOCK_NB)) {
      if (wrapperGone()) return "abandoned";
      await Bun.sleep(100);
    }
    const st = fs.fstatSync(fd);
    flock(fd, LOCK_UN);
    return st.nlink === 0 || st.size > 0;
  } finally {
    fs.closeSync(fd);
  }
}

/** The hook has already announced the start (with our pid); we report the end. */
export async function runNotifier(a: NotifyArgs): Promise<number> {
  let ok = true;
  for (const lock of a.locks) {
    const r = await waitForLock(lock, () => !fs.existsSync(a.fifo));
    if (r === "abandoned") return 0;
    ok = r && ok;
  }
  sendEvent(a.fifo, { ev: "done", id: a.id, drv: a.drv, ok });
  return 0;
}
