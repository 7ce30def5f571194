// Resumption admission: when several stopped evaluations finish their IFD builds at once, resuming
// them all could page everything back in together and OOM the host. A resumption that brings back a
// lot of swapped memory waits its turn on a shared lock and for the memory to be there.
import fs from "node:fs";
import path from "node:path";
import { LOCK_EX, LOCK_NB, LOCK_UN, flock } from "../sys/libc.ts";
import { availableMemory, readProcStatus, swapRoom } from "../sys/proc.ts";

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
function ensureShared(dir: string): void {
  if (fs.existsSync(dir)) return;
  fs.mkdirSync(dir, { recursive: true });
  fs.chmodSync(dir, 0o1777);
}

function openSharedLock(dir: string): number {
  ensureShared(dir);
  const file = path.join(dir, "resume.lock");
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o666);
  try {
    fs.fchmodSync(fd, 0o666);
  } catch {}
  return fd;
}

export interface Admission {
  waitedMs: number;
  /** Ends this evaluation's turn: when it stops for its next build, or exits. */
  release(): void;
}

/**
 * Stopped evaluations register here so others can count their memory as reclaimable: the kernel
 * swaps a stopped process out on demand, as far as swap has room.
 */
function registryDir(sharedDir: string): string {
  return path.join(sharedDir, "stopped");
}

export function markStopped(sharedDir: string, nixPid: number): void {
  try {
    ensureShared(sharedDir);
    ensureShared(registryDir(sharedDir));
    fs.writeFileSync(path.join(registryDir(sharedDir), String(nixPid)), "", { mode: 0o666 });
  } catch {}
}

export function markRunning(sharedDir: string, nixPid: number): void {
  fs.rmSync(path.join(registryDir(sharedDir), String(nixPid)), { force: true });
}

/** The other stopped evaluations: how many, and their resident memory as far as swap can take it. */
export function stoppedPeers(sharedDir: string, selfPid: number): { count: number; reclaimable: number } {
  let sum = 0;
  let count = 0;
  let names: string[] = [];
  try {
    names = fs.readdirSync(registryDir(sharedDir));
  } catch {}
  for (const n of names) {
    const pid = Number(n);
    if (pid === selfPid) continue;
    const st = readProcStatus(pid);
    if (!st) markRunning(sharedDir, pid); // gone: forget it
    else if (st.state === "T") {
      count++;
      sum += st.rssBytes;
    }
  }
  return { count, reclaimable: Math.min(sum, swapRoom(selfPid)) };
}

/**
 * Waits until this evaluation may run again. When memory is plentiful it goes at once. Otherwise
 * it takes its turn on the shared lock — one resumed evaluation at a time — and waits until the
 * memory it will touch fits (free memory plus what the stopped ones can give up), at most
 * `maxWaitMs`. The returned release ends the turn: the caller holds it while nix runs, and
 * releases it when nix stops for its next build or exits.
 */
export async function admit(pid: number, sharedDir: string, p: AdmissionPolicy, onWait: (msg: string) => void, cancelled: () => boolean): Promise<Admission> {
  const t0 = Date.now();
  const swap = () => readProcStatus(pid)?.swapBytes ?? 0;
  const free = () => availableMemory(pid);
  // Plentiful: enough for us and for every stopped peer to grow by the margin once it resumes
  // too. Checked without the lock, so it must hold whoever else checks at the same moment.
  const peers = stoppedPeers(sharedDir, pid);
  if (swap() < p.fastPathBytes && free() >= swap() + p.marginBytes * (1 + peers.count)) return { waitedMs: 0, release() {} };
  let fd: number | undefined;
  try {
    fd = openSharedLock(sharedDir);
  } catch (e) {
    onWait(`cannot use the shared directory ${sharedDir} (${(e as Error).message}); resuming without turn-taking`);
  }
  let said = false;
  // Poll rather than block: this runs on the wrapper's event loop. A turn lasts until its holder
  // stops again or exits; past a generous limit the holder is stuck or hostile and we go anyway.
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
    const avail = free() + stoppedPeers(sharedDir, pid).reclaimable;
    if (cancelled() || decide(swap(), avail, Date.now() - t1, p) === "resume") break;
    if (!said) onWait(`waiting for memory: nix has ${mib(swap())} in swap, ${mib(avail)} available or reclaimable`);
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
