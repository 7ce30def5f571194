// Resumption admission: when several stopped evaluations finish their IFD builds at once, resuming
// them all could page everything back in together and OOM the host. A resumption that brings back a
// lot of swapped memory waits its turn on a shared lock and for the memory to be there.
import fs from "node:fs";
import path from "node:path";
import { LOCK_EX, LOCK_NB, LOCK_UN, flock } from "../sys/libc.ts";
import { availableMemory, readProcStatus } from "../sys/proc.ts";

export interface AdmissionPolicy {
  /** Memory that must remain free besides what the resumed process brings back. */
  marginBytes: number;
  /** After this long, resume anyway: a stopped nix must never wait forever. */
  maxWaitMs: number;
  /** Below this much swapped memory, resuming costs little: no turn-taking. */
  fastPathBytes: number;
}

export type Verdict = "resume" | "wait";

/** Pure: may a process with `swapBytes` in swap resume now, given `availBytes` free? */
export function decide(swapBytes: number, availBytes: number, waitedMs: number, p: AdmissionPolicy): Verdict {
  if (swapBytes < p.fastPathBytes) return "resume";
  if (availBytes >= swapBytes + p.marginBytes) return "resume";
  return waitedMs >= p.maxWaitMs ? "resume" : "wait";
}

export function defaultSharedDir(): string {
  return process.getuid?.() === 0 && fs.existsSync("/run") ? "/run/nix-sigstop" : "/tmp/nix-sigstop-shared";
}

/** The shared lock file; the directory is sticky and world-writable so every user's wrappers coordinate. */
function openSharedLock(dir: string): number {
  if (!fs.existsSync(dir)) {
    fs.mkdirSync(dir, { recursive: true });
    fs.chmodSync(dir, 0o1777);
  }
  const file = path.join(dir, "resume.lock");
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o666);
  try {
    fs.fchmodSync(fd, 0o666);
  } catch {}
  return fd;
}

export interface Admission {
  waitedMs: number;
  /** Call once the resumed process has its memory back (or after a while) to let the next one go. */
  release(): void;
}

export async function admit(pid: number, sharedDir: string, p: AdmissionPolicy, onWait: (msg: string) => void, cancelled: () => boolean): Promise<Admission> {
  const t0 = Date.now();
  const swap = () => readProcStatus(pid)?.swapBytes ?? 0;
  if (swap() < p.fastPathBytes) return { waitedMs: 0, release() {} };
  let fd: number | undefined;
  try {
    fd = openSharedLock(sharedDir);
  } catch (e) {
    onWait(`cannot use the shared directory ${sharedDir} (${(e as Error).message}); resuming without turn-taking`);
  }
  let said = false;
  // Poll rather than block: this runs on the wrapper's event loop. A holder keeps the lock at most
  // its own memory wait plus a few seconds of settling; past a generous multiple of that, a holder
  // is stuck (or hostile) and we go ahead without our turn.
  const turnLimit = 3 * p.maxWaitMs + 10000;
  while (fd !== undefined && !flock(fd, LOCK_EX | LOCK_NB)) {
    if (cancelled() || Date.now() - t0 >= turnLimit) break;
    if (!said) onWait(`waiting for another nix-sigstop to resume first (shared lock in ${sharedDir})`);
    said = true;
    await Bun.sleep(100);
  }
  said = false;
  const t1 = Date.now();
  for (;;) {
    const waited = Date.now() - t1;
    if (cancelled() || decide(swap(), availableMemory(pid), waited, p) === "resume") break;
    if (!said) onWait(`waiting for memory: nix has ${mib(swap())} in swap, ${mib(availableMemory(pid))} available`);
    said = true;
    await Bun.sleep(250);
  }
  const release = () => {
    if (fd === undefined) return;
    try {
      flock(fd, LOCK_UN);
      fs.closeSync(fd);
    } catch {}
    fd = undefined;
  };
  return { waitedMs: Date.now() - t0, release };
}

export const mib = (b: number) => `${(b / 1048576).toFixed(b < 10 * 1048576 ? 1 : 0)} MiB`;
