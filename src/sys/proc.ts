// Readers of /proc and cgroup files. Parsing is pure (exported for tests); reading is thin.
import fs from "node:fs";

export interface ProcStatus {
  state: string;
  rssBytes: number;
  hwmBytes: number;
  swapBytes: number;
}

export function parseProcStatus(text: string): ProcStatus {
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? 0) * 1024;
  return {
    state: /^State:\s+(\S)/m.exec(text)?.[1] ?? "?",
    rssBytes: kb("VmRSS"),
    hwmBytes: kb("VmHWM"),
    swapBytes: kb("VmSwap"),
  };
}

export function readProcStatus(pid: number): ProcStatus | undefined {
  try {
    return parseProcStatus(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return undefined;
  }
}

/** Start time in clock ticks (field 22 of /proc/PID/stat): tells a process from a later one with its pid. */
export function parseStartTime(stat: string): number | undefined {
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const v = Number(rest[19]);
  return Number.isFinite(v) ? v : undefined;
}

export function readStartTime(pid: number): number | undefined {
  try {
    return parseStartTime(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return undefined;
  }
}

export function parseMemAvailable(meminfo: string): number {
  return Number(/^MemAvailable:\s+(\d+) kB/m.exec(meminfo)?.[1] ?? 0) * 1024;
}

/** The memory cgroup directory of a process, for v2 (unified) or v1 (memory controller). */
export function parseMemoryCgroup(cgroupFile: string): { v2?: string; v1?: string } {
  const out: { v2?: string; v1?: string } = {};
  for (const line of cgroupFile.split("\n")) {
    const [, controllers, path] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
    if (path === undefined) continue;
    if (controllers === "") out.v2 = path;
    else if (controllers!.split(",").includes("memory")) out.v1 = path;
  }
  return out;
}

const readNum = (p: string): number | undefined => {
  try {
    const t = fs.readFileSync(p, "utf8").trim();
    return t === "max" ? Number.POSITIVE_INFINITY : Number(t);
  } catch {
    return undefined;
  }
};

/** `limit - usage` from two counter files of a cgroup, when the limit is set. */
function left(dir: string, limitFile: string, usageFile: string): number | undefined {
  const limit = readNum(`${dir}/${limitFile}`);
  const usage = readNum(`${dir}/${usageFile}`);
  return limit !== undefined && usage !== undefined && Number.isFinite(limit) && limit < 2 ** 60 ? limit - usage : undefined;
}

/** The memory cgroup directories of a process (v1 memory controller, v2 under either mount point). */
function cgroupDirs(pid: number | "self"): { v1?: string; v2: string[] } {
  const cg = parseMemoryCgroup(safeRead(`/proc/${pid}/cgroup`));
  return {
    v1: cg.v1 !== undefined ? `/sys/fs/cgroup/memory${cg.v1}` : undefined,
    v2: cg.v2 !== undefined ? ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"].map((root) => `${root}${cg.v2}`) : [],
  };
}

const min = (a: number, b: number | undefined) => (b === undefined ? a : Math.min(a, b));
const swapFreeOf = (meminfo: string) => Number(/^SwapFree:\s+(\d+) kB/m.exec(meminfo)?.[1] ?? 0) * 1024;

/** Bytes a process may still use before its memory cgroup (or the host) runs out. */
export function availableMemory(pid: number | "self" = "self"): number {
  const meminfo = safeRead("/proc/meminfo");
  let avail = meminfo ? parseMemAvailable(meminfo) : Number.POSITIVE_INFINITY;
  const cg = cgroupDirs(pid);
  if (cg.v1) {
    const inactive = Number(/^total_inactive_file (\d+)/m.exec(safeRead(`${cg.v1}/memory.stat`))?.[1] ?? 0);
    const l = left(cg.v1, "memory.limit_in_bytes", "memory.usage_in_bytes");
    avail = min(avail, l === undefined ? undefined : l + inactive);
  }
  for (const dir of cg.v2) avail = min(avail, left(dir, "memory.max", "memory.current"));
  return Math.max(0, avail);
}

/** Swap still free for a process: the host's, and its memory cgroup's swap allowance if it has one. */
export function swapRoom(pid: number | "self" = "self"): number {
  let room = swapFreeOf(safeRead("/proc/meminfo"));
  const cg = cgroupDirs(pid);
  if (cg.v1) room = min(room, left(cg.v1, "memory.memsw.limit_in_bytes", "memory.memsw.usage_in_bytes"));
  for (const dir of cg.v2) room = min(room, left(dir, "memory.swap.max", "memory.swap.current"));
  return Math.max(0, room);
}

/**
 * Room for new memory (RAM plus swap) before the cgroup or the host must OOM-kill: what an evaluation
 * can still grow by. Bringing pages back from swap does not use it (they only change place).
 */
export function commitRoom(pid: number | "self" = "self"): number {
  const meminfo = safeRead("/proc/meminfo");
  const swapFree = swapFreeOf(meminfo);
  let room = meminfo ? parseMemAvailable(meminfo) + swapFree : Number.POSITIVE_INFINITY;
  const cg = cgroupDirs(pid);
  if (cg.v1) {
    const memsw = left(cg.v1, "memory.memsw.limit_in_bytes", "memory.memsw.usage_in_bytes");
    const ram = left(cg.v1, "memory.limit_in_bytes", "memory.usage_in_bytes");
    room = min(room, memsw ?? (ram === undefined ? undefined : ram + swapFree));
  }
  for (const dir of cg.v2) {
    const ram = left(dir, "memory.max", "memory.current");
    if (ram === undefined) continue;
    const swap = left(dir, "memory.swap.max", "memory.swap.current");
    room = min(room, ram + Math.min(swapFree, Math.max(0, swap ?? swapFree)));
  }
  return Math.max(0, room);
}

function safeRead(p: string): string {
  try {
    return fs.readFileSync(p, "utf8");
  } catch {
    return "";
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The inode in a socket fd's /proc link ("socket:[123]"), or undefined for anything else. */
export function parseSocketLink(link: string): number | undefined {
  const m = /^socket:\[(\d+)\]$/.exec(link);
  return m ? Number(m[1]) : undefined;
}

/** The inodes of the sockets a process holds open (empty if it is gone or not ours to look at). */
export function socketInodes(pid: number): number[] {
  const out: number[] = [];
  let fds: string[];
  try {
    fds = fs.readdirSync(`/proc/${pid}/fd`);
  } catch {
    return out;
  }
  for (const fd of fds) {
    try {
      const ino = parseSocketLink(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (ino !== undefined && !out.includes(ino)) out.push(ino);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}
