// Resumption admission: when several stopped evaluations finish their IFD builds at once, resuming
// them all could page everything back in together and OOM the host. A resumption that brings back a
// lot of swapped memory waits its turn on a shared lock and for the memory to be there.
import fs from "node:fs";
import path from "node:path";
import { openTurnLock, touchEntry, type SharedDir } from "./shared-dir.ts";
import { LOCK_EX, LOCK_NB, LOCK_UN, flock } from "../sys/libc.ts";
import { availableMemory, commitRoom, readProcStatus, swapRoom } from "../sys/proc.ts";

export interface AdmissionPolicy {
  /** Memory that must remain free besides what the resumed process brings back. */
  marginBytes: number;
  /** After this long, resume anyway: a stopped nix must never wait forever. */
  maxWaitMs: number;
  /** Below this much swapped memory, resuming costs little: no turn-taking. */
  fastPathBytes: number;
}

/** What resuming one stopped nix would meet. */
export interface MemoryView {
  /** What this nix has in swap: it comes back into RAM when it runs. */
  swapBytes: number;
  /** RAM free now. */
  freeRamBytes: number;
  /** RAM the stopped peers can give up (to swap, as far as it has room). */
  reclaimableBytes: number;
  /** Room for new memory, RAM plus swap, before the cgroup or host OOM-kills: what nix may grow by. */
  commitBytes: number;
}

/**
 * Pure: resuming fits when the swapped pages have RAM to come back to and there is room left for
 * nix to grow by the margin. (Swap-in only moves pages, so it does not count against the room.)
 */
export function fits(m: MemoryView, p: AdmissionPolicy): boolean {
  return m.freeRamBytes + m.reclaimableBytes >= m.swapBytes && m.commitBytes >= p.marginBytes;
}

/**
 * Pure: no turn-taking when little comes back from swap and there is room for this nix and every
 * other one that may run soon (`others`: stopped peers and the one holding the turn) to grow.
 * Checked without the lock, so it must hold whoever else checks at the same moment.
 */
export function plentiful(m: MemoryView, others: number, p: AdmissionPolicy): boolean {
  return (
    m.swapBytes < p.fastPathBytes && m.freeRamBytes >= m.swapBytes && m.commitBytes >= p.marginBytes * (1 + others)
  );
}

/** How long nothing on the host may move before the biggest waiter goes (a quarter of maxWait if shorter). */
export const STALL_MS = 15000;

/**
 * Pure: may a nix that does not fit go anyway? When nothing on the host has moved (no peer stopped,
 * resumed or exited) for STALL_MS, the biggest waiter goes: it has likely done most of its work and
 * frees the most when it ends. (Waiting longer frees nothing; resuming a small one that then grows
 * is what made the OOM killer take the big stopped ones.) Past maxWait anyone goes: nix is never
 * stopped forever.
 */
export function forced(
  s: { waitedMs: number; sinceProgressMs: number; biggest: boolean },
  p: AdmissionPolicy,
): boolean {
  if (s.waitedMs >= p.maxWaitMs) return true;
  return s.biggest && s.sinceProgressMs >= Math.min(STALL_MS, p.maxWaitMs / 4);
}

export interface Admission {
  waitedMs: number;
  /** Ends this evaluation's turn: when it stops for its next build, or exits. */
  release(): void;
}

/**
 * Stopped evaluations register here so others can count their memory as reclaimable: the kernel
 * swaps a stopped process out on demand, as far as swap has room. The directory's mtime is the
 * host's last progress: an entry appears or goes whenever a nix stops, resumes or exits.
 */
function registryDir(sharedDir: string): string {
  return path.join(sharedDir, "stopped");
}

/** Evaluations waiting to resume, so the biggest can be told apart when one must be forced on. */
function waitingDir(sharedDir: string): string {
  return path.join(sharedDir, "waiting");
}

function mark(dir: string, pid: number): void {
  touchEntry(dir, String(pid));
}

function unmark(dir: string, pid: number): void {
  fs.rmSync(path.join(dir, String(pid)), { force: true });
}

/** Without a shared directory (refused, see shared-dir.ts) nothing is registered. */
export function markStopped(shared: SharedDir | undefined, nixPid: number): void {
  if (shared) mark(registryDir(shared.path), nixPid);
}
export function markRunning(shared: SharedDir | undefined, nixPid: number): void {
  if (shared) unmark(registryDir(shared.path), nixPid);
}

/** Live stopped processes registered in `dir`, other than `selfPid`; dead entries are dropped. */
function stoppedIn(dir: string, selfPid: number): { pid: number; rssBytes: number; swapBytes: number }[] {
  let names: string[] = [];
  try {
    names = fs.readdirSync(dir);
  } catch {}
  const out = [];
  for (const n of names) {
    const pid = Number(n);
    if (pid === selfPid) continue;
    const st = readProcStatus(pid);
    if (!st) unmark(dir, pid); // gone: forget it
    else if (st.state === "T") out.push({ pid, rssBytes: st.rssBytes, swapBytes: st.swapBytes });
  }
  return out;
}

/** The other stopped evaluations: how many, and their resident memory as far as swap can take it. */
export function stoppedPeers(sharedDir: string, selfPid: number, ownSwap = 0): { count: number; reclaimable: number } {
  const peers = stoppedIn(registryDir(sharedDir), selfPid);
  const rss = peers.reduce((a, q) => a + q.rssBytes, 0);
  // Our own pages leaving swap make room for theirs.
  return { count: peers.length, reclaimable: Math.min(rss, swapRoom(selfPid) + ownSwap) };
}

/** Pure: is `self` the biggest (RSS + swap) of the waiters? Ties go to the lower pid. */
export function isBiggest(self: { pid: number; bytes: number }, others: { pid: number; bytes: number }[]): boolean {
  return others.every((o) => self.bytes > o.bytes || (self.bytes === o.bytes && self.pid < o.pid));
}

function lastProgressMs(sharedDir: string): number {
  try {
    return fs.statSync(registryDir(sharedDir)).mtimeMs;
  } catch {
    return 0;
  }
}

/** Whether another evaluation holds the turn (it is running after its resumption). */
function turnHeld(fd: number): boolean {
  if (!flock(fd, LOCK_EX | LOCK_NB)) return true;
  flock(fd, LOCK_UN);
  return false;
}

/**
 * Waits until this evaluation may run again. When memory is plentiful it goes at once. Otherwise
 * it takes its turn on the shared lock (one resumed evaluation at a time) once it fits (see fits()).
 * While it does not fit, it does not keep the turn: an evaluation that fits (one about to finish,
 * whose exit frees memory for everyone) goes first. (Holding the turn while waiting made every
 * stopped evaluation queue behind one that could not run, until --resume-max-wait forced it on and
 * the OOM killer took the others.) When nothing fits and nothing moves, see forced(). The returned
 * release ends the turn: the caller holds it while nix runs, and releases it when nix stops for its
 * next build or exits.
 */
export async function admit(
  pid: number,
  shared: SharedDir | undefined,
  p: AdmissionPolicy,
  onWait: (msg: string) => void,
  cancelled: () => boolean,
): Promise<Admission> {
  // No shared directory: the refusal was said once at start; nix resumes at once, as it would without nix-sigstop.
  if (!shared) return { waitedMs: 0, release() {} };
  const sharedDir = shared.path;
  const t0 = Date.now();
  const swapNow = () => readProcStatus(pid)?.swapBytes ?? 0;
  const view = (swapBytes = swapNow(), peers = stoppedPeers(sharedDir, pid, swapBytes)): MemoryView => ({
    swapBytes,
    freeRamBytes: availableMemory(pid),
    reclaimableBytes: peers.reclaimable,
    commitBytes: commitRoom(pid),
  });
  let fd: number | undefined;
  try {
    fd = openTurnLock(sharedDir);
  } catch (e) {
    onWait(`cannot use the shared directory ${shared.name} (${(e as Error).message}); resuming without turn-taking`);
    return { waitedMs: 0, release() {} };
  }
  const closeFd = () => {
    if (fd === undefined) return;
    try {
      fs.closeSync(fd);
    } catch {}
    fd = undefined;
  };
  const swap = swapNow();
  const peers = stoppedPeers(sharedDir, pid, swap);
  if (plentiful(view(swap, peers), peers.count + (turnHeld(fd) ? 1 : 0), p)) {
    closeFd();
    return { waitedMs: 0, release() {} };
  }
  mark(waitingDir(sharedDir), pid);
  let said = "";
  const say = (m: string) => {
    if (m !== said) onWait(m);
    said = m;
  };
  // Poll rather than block: this runs on the wrapper's event loop. A turn lasts until its holder
  // stops again or exits; past a generous limit the holder is stuck or hostile and we go anyway.
  const turnLimit = 3 * p.maxWaitMs + 10000;
  try {
    for (;;) {
      if (cancelled()) break;
      const waited = Date.now() - t0;
      if (flock(fd, LOCK_EX | LOCK_NB)) {
        const m = view();
        if (fits(m, p)) break; // our turn: kept until release()
        const me = { pid, bytes: m.swapBytes + (readProcStatus(pid)?.rssBytes ?? 0) };
        const waiters = stoppedIn(waitingDir(sharedDir), pid)
          .map((w) => ({ pid: w.pid, bytes: w.rssBytes + w.swapBytes }));
        const sinceProgressMs = Date.now() - Math.max(t0, lastProgressMs(sharedDir));
        if (forced({ waitedMs: waited, sinceProgressMs, biggest: isBiggest(me, waiters) }, p)) {
          const why = waited >= p.maxWaitMs
            ? `waited --resume-max-wait (${(p.maxWaitMs / 1000).toFixed(0)} s)`
            : `nothing has moved for ${(sinceProgressMs / 1000).toFixed(0)} s` +
              " and this is the biggest waiting evaluation";
          onWait(`resuming without room for nix to grow by ${mib(p.marginBytes)} (${mib(m.commitBytes)} left): ${why}`);
          break;
        }
        flock(fd, LOCK_UN);
        say(m.commitBytes < p.marginBytes
          ? `waiting for memory: ${mib(m.commitBytes)} left before an OOM kill,` +
            ` --resume-margin is ${mib(p.marginBytes)}`
          : `waiting for memory: nix has ${mib(m.swapBytes)} in swap,` +
            ` ${mib(m.freeRamBytes + m.reclaimableBytes)} of RAM available or reclaimable`);
      } else {
        if (waited >= turnLimit) break;
        say(`waiting for another nix-sigstop to resume first (shared lock in ${shared.name})`);
      }
      await Bun.sleep(250);
    }
  } finally {
    unmark(waitingDir(sharedDir), pid);
  }
  const release = () => {
    if (fd === undefined) return;
    try {
      flock(fd, LOCK_UN);
    } catch {}
    closeFd();
  };
  return { waitedMs: Date.now() - t0, release };
}

export const mib = (b: number) => `${(b / 1048576).toFixed(b < 10 * 1048576 ? 1 : 0)} MiB`;
