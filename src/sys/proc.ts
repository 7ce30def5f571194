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

/** Bytes a process may still use before its memory cgroup (or the host) runs out. */
export function availableMemory(pid: number | "self" = "self"): number {
  let avail = Number.POSITIVE_INFINITY;
  try {
    avail = parseMemAvailable(fs.readFileSync("/proc/meminfo", "utf8"));
  } catch {}
  let cg: { v2?: string; v1?: string } = {};
  try {
    cg = parseMemoryCgroup(fs.readFileSync(`/proc/${pid}/cgroup`, "utf8"));
  } catch {}
  if (cg.v1 !== undefined) {
    const dir = `/sys/fs/cgroup/memory${cg.v1}`;
    const limit = readNum(`${dir}/memory.limit_in_bytes`);
    const usage = readNum(`${dir}/memory.usage_in_bytes`);
    const inactive = Number(/^total_inactive_file (\d+)/m.exec(safeRead(`${dir}/memory.stat`))?.[1] ?? 0);
    if (limit !== undefined && usage !== undefined && limit < 2 ** 60) avail = Math.min(avail, limit - usage + inactive);
  }
  if (cg.v2 !== undefined) {
    for (const root of ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]) {
      const limit = readNum(`${root}${cg.v2}/memory.max`);
      const usage = readNum(`${root}${cg.v2}/memory.current`);
      if (limit !== undefined && usage !== undefined && Number.isFinite(limit)) avail = Math.min(avail, limit - usage);
    }
  }
  return Math.max(0, avail);
}

/** Swap still free for a process: the host's, and its memory cgroup's swap allowance if it has one. */
export function swapRoom(pid: number | "self" = "self"): number {
  let room = Number(/^SwapFree:\s+(\d+) kB/m.exec(safeRead("/proc/meminfo"))?.[1] ?? 0) * 1024;
  const cg = parseMemoryCgroup(safeRead(`/proc/${pid}/cgroup`));
  if (cg.v1 !== undefined) {
    const dir = `/sys/fs/cgroup/memory${cg.v1}`;
    const limit = readNum(`${dir}/memory.memsw.limit_in_bytes`);
    const usage = readNum(`${dir}/memory.memsw.usage_in_bytes`);
    if (limit !== undefined && usage !== undefined && limit < 2 ** 60) room = Math.min(room, limit - usage);
  }
  if (cg.v2 !== undefined) {
    for (const root of ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]) {
      const max = readNum(`${root}${cg.v2}/memory.swap.max`);
      const cur = readNum(`${root}${cg.v2}/memory.swap.current`);
      if (max !== undefined && cur !== undefined && Number.isFinite(max)) room = Math.min(room, max - cur);
    }
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
