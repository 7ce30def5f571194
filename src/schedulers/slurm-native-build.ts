// Builds the slurm-native shim on first use and caches it: finds slurm/slurm.h, a C compiler and
// libslurm, compiles slurm-native-shim.ts's source against them into a private cache directory
// (0700, owned by us, never group- or world-writable), written under a temporary name and renamed,
// so concurrent hooks never load a half-written file. A later start finds the file and compiles
// nothing. What is missing is named, with `job-scheduler = slurm-cli` as the way around it.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { SchedulerError } from "./scheduler.ts";
import { compileArgv, parseSlurmVersionHeader, SHIM_SOURCE, shimFileName } from "./slurm-native-shim.ts";

export interface ShimBuildOptions {
  /** directory holding slurm/slurm.h; empty: the usual system directories */
  includeDir: string;
  /** directory holding libslurm.so; empty: the linker's default path */
  libDir: string;
  /** compiler command or path (slurm-native-cc), default "cc" */
  compiler: string;
  cacheDir: string;
  /** PATH to find the compiler on */
  pathEnv: string;
  log?: (line: string) => void;
}

export interface BuiltShim {
  file: string;
  slurmVersion: string;
  includeDir: string;
  compiler: string;
  /** true when this call compiled it, false when the cached file served */
  compiled: boolean;
  compileMs: number;
}

const USE_CLI = "or set job-scheduler = slurm-cli, which needs only sbatch, squeue and scancel";
const DEFAULT_INCLUDE_DIRS = ["/usr/include", "/usr/local/include", "/opt/slurm/include"];

export const missing = (what: string, fix: string): SchedulerError =>
  new SchedulerError("config", `slurm-native: ${what}; ${fix}, ${USE_CLI}`);

/** The directory whose slurm/slurm.h nsh compiles against, or an error naming where it looked. */
export function findIncludeDir(setting: string): string {
  const dirs = setting ? [setting] : DEFAULT_INCLUDE_DIRS;
  const found = dirs.find((d) => fs.existsSync(path.join(d, "slurm", "slurm.h")));
  if (found) return found;
  throw missing(
    `Slurm's C headers (slurm/slurm.h) are not in ${dirs.join(", ")}`,
    `install them (Debian/Ubuntu: libslurm-dev; RHEL: slurm-devel) or ${setting ? "fix" : "set"} slurm-native-include-dir`,
  );
}

/** The compiler's full path, or an error naming what was looked for on which PATH. */
export function findCompiler(setting: string, pathEnv: string): string {
  const wanted = setting || "cc";
  const candidates = setting ? [wanted] : ["cc", "gcc", "clang"];
  for (const c of candidates) {
    const found = c.includes("/") ? (fs.existsSync(c) ? c : null) : Bun.which(c, { PATH: pathEnv });
    if (found) return found;
  }
  throw missing(
    `no C compiler: ${candidates.join(", ")} ${candidates.length > 1 ? "are" : "is"} not on PATH (${pathEnv || "empty"})`,
    `install one (Debian/Ubuntu: gcc) or name it in slurm-native-cc`,
  );
}

/**
 * libslurm.so (the link-time name, from libslurm-dev) in `libDir`, or where the compiler's linker
 * finds it (`cc -print-file-name` answers the bare name when it finds none).
 */
export function findLibslurm(libDir: string, compiler: string, pathEnv: string): string {
  const how = "install libslurm-dev (it has the libslurm.so link; RHEL: slurm-devel) or set slurm-native-lib-dir";
  if (libDir) {
    const file = path.join(libDir, "libslurm.so");
    if (fs.existsSync(file)) return file;
    throw missing(`libslurm (libslurm.so) is not in ${libDir} (slurm-native-lib-dir)`, how);
  }
  const env = { PATH: pathEnv, LC_ALL: "C" };
  const r = spawnSync(compiler, ["-print-file-name=libslurm.so"], { encoding: "utf8", env, timeout: 30_000 });
  const found = (r.stdout ?? "").trim();
  if (r.status === 0 && path.isAbsolute(found) && fs.existsSync(found)) return path.resolve(found);
  throw missing(`libslurm (libslurm.so) is not on ${compiler}'s library path`, how);
}

/** The private cache directory, created 0700; refused when someone else could write into it. */
export function ensureCacheDir(dir: string): string {
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new SchedulerError("config", `slurm-native: cannot create the shim cache ${dir}: ${(e as Error).message}`);
  }
  // lstat: a symlink planted in the cache's place is refused, whoever it points to.
  const st = fs.lstatSync(dir);
  const uid = process.getuid?.() ?? st.uid;
  if (!st.isDirectory()) {
    throw new SchedulerError("config", `slurm-native: the shim cache ${dir} is not a directory (a symlink?); remove it`);
  }
  if (st.uid !== uid || (st.mode & 0o022) !== 0) {
    const what = st.uid !== uid ? `owned by uid ${st.uid}, not ${uid}` : `writable by others (mode ${(st.mode & 0o7777).toString(8)})`;
    throw new SchedulerError(
      "config",
      `slurm-native: the shim cache ${dir} is ${what}; nsh loads code from it, so it must be private: remove it or chmod 700 it`,
    );
  }
  return dir;
}

/** The shim for this machine's Slurm: the cached file, or compiled now into the cache. */
export function ensureShim(o: ShimBuildOptions): BuiltShim {
  const includeDir = findIncludeDir(o.includeDir);
  const versionFile = path.join(includeDir, "slurm", "slurm_version.h");
  const slurmVersion = fs.existsSync(versionFile) ? parseSlurmVersionHeader(fs.readFileSync(versionFile, "utf8")) : null;
  if (!slurmVersion) {
    throw missing(`${versionFile} is missing or names no SLURM_VERSION_NUMBER`, "reinstall Slurm's headers");
  }
  const cacheDir = ensureCacheDir(o.cacheDir);
  // The compiler is part of the key only when one is named: a cached shim needs no compiler at all.
  const named = o.compiler ? o.compiler : "default";
  const name = shimFileName({ slurmVersion, arch: process.arch, includeDir, libDir: o.libDir, compiler: named });
  const file = path.join(cacheDir, name);
  if (isOurs(file)) return { file, slurmVersion, includeDir, compiler: named, compiled: false, compileMs: 0 };
  fs.rmSync(file, { force: true }); // not ours, or writable by others: never load it, build anew

  const compiler = findCompiler(o.compiler, o.pathEnv);
  findLibslurm(o.libDir, compiler, o.pathEnv);
  const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const argv = compileArgv(compiler, includeDir, o.libDir, tmp);
  const t0 = performance.now();
  const r = spawnSync(argv[0]!, argv.slice(1), {
    input: SHIM_SOURCE,
    encoding: "utf8",
    env: { PATH: o.pathEnv, LC_ALL: "C" },
    timeout: 120_000,
  });
  const compileMs = performance.now() - t0;
  if (r.status !== 0 || !fs.existsSync(tmp)) {
    fs.rmSync(tmp, { force: true });
    const out = `${r.stderr ?? ""}${r.error ? r.error.message : ""}`.trim();
    if (/cannot find -lslurm|libslurm\.so/.test(out)) {
      throw missing(
        `libslurm (libslurm.so) is not ${o.libDir ? `in ${o.libDir}` : "on the linker's path"}`,
        "install libslurm-dev (it has the libslurm.so link) or set slurm-native-lib-dir",
      );
    }
    const tail = out.split("\n").slice(-8).join("\n");
    const what = `compiling the libslurm shim with ${compiler} failed (Slurm ${slurmVersion}, ${includeDir})`;
    throw new SchedulerError("config", `slurm-native: ${what}: ${tail}; ${USE_CLI}`);
  }
  fs.chmodSync(tmp, 0o700);
  fs.renameSync(tmp, file);
  const ms = compileMs.toFixed(0);
  o.log?.(`slurm-native: compiled the libslurm shim for Slurm ${slurmVersion} with ${compiler} in ${ms} ms: ${file}`);
  return { file, slurmVersion, includeDir, compiler, compiled: true, compileMs };
}

/** A regular file of ours that nobody else may write: the only kind of cached shim nsh loads. */
function isOurs(file: string): boolean {
  try {
    const st = fs.lstatSync(file);
    return st.isFile() && st.uid === (process.getuid?.() ?? st.uid) && (st.mode & 0o022) === 0;
  } catch {
    return false;
  }
}
