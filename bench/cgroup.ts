// A memory cgroup for the benchmark's evaluations (v1 memory controller or v2), and a temporary
// swap file. Both are removed by their teardown, which is synchronous so it can run from a signal
// handler or an exit hook. Needs root.
import fs from "node:fs";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { fmtBytes } from "./lib.ts";

export interface CgroupCounters {
  /** OOM kills the kernel made in this cgroup (memory.oom_control / memory.events oom_kill). */
  oomKills: number;
  /** Times the memory limit was hit (v1 memory.failcnt; v2 memory.events max). */
  failcnt: number;
  /** Peak RAM charged to the cgroup. */
  peakBytes?: number;
  /** Peak RAM + swap (v1 memory.memsw.max_usage_in_bytes). */
  peakMemswBytes?: number;
}

export interface MemCgroup {
  dir: string;
  version: 1 | 2;
  /** argv that joins the cgroup, then execs the given argv (so everything it starts is inside). */
  wrap(argv: string[]): string[];
  usage(): { ram: number; swapOrMemsw?: number };
  counters(): CgroupCounters;
  /** SIGKILL whatever is left inside, then remove the directory. Idempotent. */
  remove(): void;
}

const readText = (p: string): string => {
  try {
    return fs.readFileSync(p, "utf8");
  } catch {
    return "";
  }
};
const readNum = (p: string): number | undefined => {
  const t = readText(p).trim();
  return t === "" || t === "max" ? undefined : Number(t);
};
const field = (text: string, key: string): number => Number(new RegExp(`^${key} (\\d+)`, "m").exec(text)?.[1] ?? 0);

/** Which memory cgroup hierarchy this machine has. */
export function memoryCgroupVersion(): 1 | 2 | undefined {
  if (fs.existsSync("/sys/fs/cgroup/cgroup.controllers")) return 2;
  if (fs.existsSync("/sys/fs/cgroup/memory/memory.limit_in_bytes")) return 1;
  return undefined;
}

/** Our own memory cgroup (v1), so the benchmark's cgroup is nested in it and counted against it. */
function ownV1Dir(): string {
  const line = readText("/proc/self/cgroup").split("\n").find((l) => /^\d+:([^:]*,)?memory(,[^:]*)?:/.test(l));
  const rel = line ? line.slice(line.indexOf(":", line.indexOf(":") + 1) + 1) : "/";
  return path.join("/sys/fs/cgroup/memory", rel);
}

/**
 * Creates the cgroup with `limit` bytes of RAM and, if given, `memsw` bytes of RAM + swap.
 * v1: a child of our own memory cgroup. v2: a child of the root (a non-root cgroup with
 * processes in it cannot delegate the memory controller).
 */
export function createMemCgroup(name: string, limit: number, memsw?: number): MemCgroup {
  const version = memoryCgroupVersion();
  if (version === undefined) throw new Error("no memory cgroup controller is mounted under /sys/fs/cgroup");
  const parent = version === 1 ? ownV1Dir() : "/sys/fs/cgroup";
  const dir = path.join(parent, name);
  if (version === 2) {
    const ctl = path.join(parent, "cgroup.subtree_control");
    if (!readText(ctl).split(/\s+/).includes("memory")) fs.writeFileSync(ctl, "+memory");
  }
  fs.mkdirSync(dir);
  let removed = false;
  const cg: MemCgroup = {
    dir,
    version,
    wrap: (argv) => ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', path.join(dir, "cgroup.procs"), ...argv],
    usage() {
      if (version === 1) return { ram: readNum(path.join(dir, "memory.usage_in_bytes")) ?? 0, swapOrMemsw: readNum(path.join(dir, "memory.memsw.usage_in_bytes")) };
      return { ram: readNum(path.join(dir, "memory.current")) ?? 0, swapOrMemsw: readNum(path.join(dir, "memory.swap.current")) };
    },
    counters() {
      if (version === 1) {
        return {
          oomKills: field(readText(path.join(dir, "memory.oom_control")), "oom_kill"),
          failcnt: readNum(path.join(dir, "memory.failcnt")) ?? 0,
          peakBytes: readNum(path.join(dir, "memory.max_usage_in_bytes")),
          peakMemswBytes: readNum(path.join(dir, "memory.memsw.max_usage_in_bytes")),
        };
      }
      const events = readText(path.join(dir, "memory.events"));
      return { oomKills: field(events, "oom_kill"), failcnt: field(events, "max"), peakBytes: readNum(path.join(dir, "memory.peak")) };
    },
    remove() {
      if (removed || !fs.existsSync(dir)) return;
      for (let round = 0; round < 100; round++) {
        const pids = readText(path.join(dir, "cgroup.procs")).split("\n").filter(Boolean).map(Number);
        if (pids.length === 0) break;
        for (const pid of pids) {
          try {
            process.kill(pid, "SIGKILL"); // only processes this benchmark put there
          } catch {}
        }
        Bun.sleepSync(50);
      }
      for (let i = 0; i < 40; i++) {
        try {
          fs.rmdirSync(dir);
          removed = true;
          return;
        } catch {
          Bun.sleepSync(50); // the last exits may still be in flight
        }
      }
      throw new Error(`could not remove the cgroup ${dir}`);
    },
  };
  try {
    if (version === 1) {
      fs.writeFileSync(path.join(dir, "memory.limit_in_bytes"), String(limit));
      if (memsw !== undefined) {
        const f = path.join(dir, "memory.memsw.limit_in_bytes");
        if (!fs.existsSync(f)) throw new Error("swap accounting is off (no memory.memsw.limit_in_bytes): boot with swapaccount=1");
        fs.writeFileSync(f, String(memsw));
      }
    } else {
      fs.writeFileSync(path.join(dir, "memory.max"), String(limit));
      if (memsw !== undefined) fs.writeFileSync(path.join(dir, "memory.swap.max"), String(Math.max(0, memsw - limit)));
    }
  } catch (e) {
    cg.remove();
    throw e;
  }
  return cg;
}

// ---------- swap ----------

export interface Swap {
  /** Swap is active (ours or the machine's). */
  active: boolean;
  totalBytes: number;
  /** The file we created and turned on, if any. */
  file?: string;
  /** What happened, for the output and the results. */
  note: string;
  /** swapoff and delete our file. Idempotent. */
  teardown(): void;
}

export function activeSwapBytes(): number {
  return readText("/proc/swaps")
    .split("\n")
    .slice(1)
    .filter(Boolean)
    .reduce((sum, l) => sum + Number(l.split(/\s+/)[2] ?? 0) * 1024, 0);
}

const sh = (argv: string[]) => {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8" });
  return { ok: r.status === 0, msg: `${r.stderr ?? ""}${r.stdout ?? ""}`.trim() || String(r.error ?? `exit ${r.status}`) };
};

/** Uses the machine's swap if it has any; otherwise creates and turns on a swap file of `bytes`. */
export function ensureSwap(bytes: number, dir = "/var/tmp"): Swap {
  const existing = activeSwapBytes();
  const none = { teardown() {} };
  if (existing > 0) return { active: true, totalBytes: existing, note: `using the machine's swap (${fmtBytes(existing)})`, ...none };
  const file = path.join(dir, `nsh-bench-${process.pid}.swap`);
  let on = false;
  let gone = false;
  const teardown = () => {
    if (gone) return;
    gone = true;
    if (on) {
      const r = sh(["swapoff", file]);
      if (!r.ok) process.stderr.write(`bench: swapoff ${file} failed: ${r.msg}\n`);
    }
    fs.rmSync(file, { force: true });
  };
  const fail = (what: string, msg: string): Swap => {
    teardown();
    return { active: false, totalBytes: 0, note: `no swap: ${what} refused (${msg})`, teardown() {} };
  };
  const mib = Math.ceil(bytes / 2 ** 20);
  let r = sh(["fallocate", "-l", `${mib}M`, file]);
  if (!r.ok) r = sh(["dd", "if=/dev/zero", `of=${file}`, "bs=1M", `count=${mib}`, "status=none"]);
  if (!r.ok) return fail("creating the swap file", r.msg);
  fs.chmodSync(file, 0o600);
  r = sh(["mkswap", file]);
  if (!r.ok) return fail("mkswap", r.msg);
  r = sh(["swapon", file]);
  if (!r.ok) return fail("swapon", r.msg);
  on = true;
  return { active: true, totalBytes: activeSwapBytes(), file, note: `created and turned on a ${fmtBytes(bytes)} swap file ${file} (removed at the end)`, teardown };
}
