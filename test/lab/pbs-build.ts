// Builds OpenPBS for the PBS lab (test/lab/pbs.ts) once per source tarball.
//
// The tarball is ../shared/vendor/openpbs/openpbs-*.tar.xz next to the checkout
// (see its README). The installed tree lives outside the checkout in
// /var/cache/nsh-lab/openpbs-<sha256:12>/pbs (NSH_LAB_CACHE overrides the
// parent): configure's --prefix is that directory itself, since PBS finds its
// binaries through PBS_EXEC in pbs.conf and needs no /opt/pbs. A "complete"
// marker is written last, so a killed build is redone; an flock serialises test
// processes that reach here at the same time. The compile runs under nice 19.
//
// Script use (scripts/setup.sh): bun test/lab/pbs-build.ts  → prints the prefix.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { aptInstall } from "./apt.ts";
import { withFileLock } from "./flock.ts";
import { removeTree, runCommand } from "./proc.ts";

const SYS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** INSTALL's Debian list with two names fixed (vendor README), plus iproute2 for the lab's netns. */
export const PBS_PACKAGES = [
  "gcc", "g++", "make", "libtool", "autoconf", "automake", "pkg-config", "libhwloc-dev", "libx11-dev",
  "libxt-dev", "libedit-dev", "libical-dev", "libncurses-dev", "perl", "postgresql-server-dev-all",
  "postgresql-contrib", "python3-dev", "tcl-dev", "tk-dev", "swig", "libexpat1-dev", "libssl-dev",
  "libxext-dev", "libxft-dev", "libcjson-dev", "expat", "libedit2", "postgresql", "python3", "sendmail-bin",
  "sudo", "tcl", "tk", "libical3", "libcjson1", "iproute2", "util-linux",
];

export interface PbsInstall {
  /** install prefix = PBS_EXEC */
  exec: string;
  /** the cache entry (prefix, marker, build logs) */
  dir: string;
  tarball: string;
  sha256: string;
  /** true when this call built it */
  built: boolean;
  /** seconds per step when built by this call */
  timings: Record<string, number>;
}

const repoRoot = path.resolve(import.meta.dir, "..", "..");

/** ../shared/vendor/openpbs of the checkout; for a git worktree (/work/wt/x) the nearest ancestor's shared/. */
export function vendorDir(root = repoRoot): string {
  if (process.env.NSH_OPENPBS_VENDOR) return process.env.NSH_OPENPBS_VENDOR;
  const first = path.join(root, "..", "shared", "vendor", "openpbs");
  for (let dir = path.dirname(root); ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, "shared", "vendor", "openpbs");
    if (fs.existsSync(candidate)) return candidate;
    if (dir === path.dirname(dir)) return first;
  }
}

export function findTarball(dir = vendorDir()): string {
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => /^openpbs-.*\.tar\.(xz|gz)$/.test(n)).sort();
  } catch {
    throw new Error(`OpenPBS source: no directory ${dir} (expected ../shared/vendor/openpbs next to the checkout)`);
  }
  if (names.length !== 1) {
    throw new Error(`OpenPBS source: expected one openpbs-*.tar.xz in ${dir}, found ${names.length}`);
  }
  return path.join(dir, names[0]!);
}

export function sha256File(file: string): string {
  const h = new Bun.CryptoHasher("sha256");
  h.update(fs.readFileSync(file));
  return h.digest("hex");
}

export const cacheRoot = (): string => process.env.NSH_LAB_CACHE ?? "/var/cache/nsh-lab";

/** Packages from `pkgs` that dpkg does not report as installed. */
export async function missingPackages(pkgs: string[]): Promise<string[]> {
  const r = await runCommand(["dpkg-query", "-W", "-f=${Package} ${db:Status-Status}\\n", ...pkgs], {
    env: { PATH: SYS_PATH, LC_ALL: "C" },
    timeoutMs: 60_000,
  });
  const installed = new Set(
    r.stdout.split("\n").filter((l) => l.endsWith(" installed")).map((l) => l.split(" ")[0]!.replace(/:.*$/, "")),
  );
  return pkgs.filter((p) => !installed.has(p));
}

const isComplete = (dir: string, exec: string): boolean =>
  fs.existsSync(path.join(dir, "complete")) && fs.existsSync(path.join(exec, "sbin", "pbs_server.bin"));

/** Ensure the packages are there and OpenPBS is built into the cache; returns where. */
export async function ensurePbsBuilt(log: (s: string) => void = () => undefined): Promise<PbsInstall> {
  const tarball = findTarball();
  const sha256 = sha256File(tarball);
  const dir = path.join(cacheRoot(), `openpbs-${sha256.slice(0, 12)}`);
  const exec = path.join(dir, "pbs");
  const result: PbsInstall = { exec, dir, tarball, sha256, built: false, timings: {} };
  const missing = await missingPackages(PBS_PACKAGES);
  if (missing.length === 0 && isComplete(dir, exec)) return result;
  fs.mkdirSync(cacheRoot(), { recursive: true });
  // Another test process may be building: wait for it (a cold build takes 10–20 min).
  return withFileLock(`${dir}.lock`, 60 * 60_000, async () => {
    const t = (name: string, t0: number): void => {
      result.timings[name] = Math.round((performance.now() - t0) / 100) / 10;
      log(`${name}: ${result.timings[name]} s`);
    };
    const stillMissing = await missingPackages(PBS_PACKAGES);
    if (stillMissing.length > 0) {
      log(`installing ${stillMissing.join(" ")}`);
      const t0 = performance.now();
      await aptInstall(stillMissing);
      t("apt-get install", t0);
    }
    if (isComplete(dir, exec)) return result;
    await build(result, t, log);
    result.built = true;
    return result;
  });
}

async function build(r: PbsInstall, t: (name: string, t0: number) => void, log: (s: string) => void): Promise<void> {
  const { dir, exec } = r;
  removeTree(dir);
  const src = path.join(dir, "src");
  const logs = path.join(dir, "build-logs");
  fs.mkdirSync(src, { recursive: true });
  fs.mkdirSync(logs, { recursive: true });
  // System python and tools only: a pyenv python first on PATH would be picked up by configure.
  const env = { PATH: SYS_PATH, LC_ALL: "C", HOME: os.homedir() };
  const jobs = String(Math.max(1, os.availableParallelism()));
  const step = async (name: string, argv: string[], timeoutMs: number): Promise<void> => {
    const logFile = path.join(logs, `${name.replace(/\W+/g, "-")}.log`);
    log(`${name} (log ${logFile})`);
    const t0 = performance.now();
    const res = await runCommand(["nice", "-n", "19", "sh", "-c", 'f=$0; exec "$@" >"$f" 2>&1', logFile, ...argv], {
      env,
      cwd: src,
      timeoutMs,
    });
    t(name, t0);
    if (res.code !== 0) {
      const tail = fs.existsSync(logFile) ? fs.readFileSync(logFile, "utf8").split("\n").slice(-25).join("\n") : "";
      throw new Error(`OpenPBS build step "${name}" failed (exit ${res.code}${res.timedOut ? ", timed out" : ""}), ` +
        `log ${logFile}:\n${tail}${res.stderr}`);
    }
  };
  log(`building OpenPBS from ${r.tarball} into ${exec}`);
  const t0 = performance.now();
  await step("extract", ["tar", "-xJf", r.tarball, "-C", src, "--strip-components=1"], 5 * 60_000);
  await step("autogen", ["./autogen.sh"], 10 * 60_000);
  await step("configure", ["./configure", `--prefix=${exec}`, "--with-python=/usr"], 20 * 60_000);
  await step("make", ["make", `-j${jobs}`], 90 * 60_000);
  // sysprofiledir: keep pbs.sh/pbs.csh out of /etc/profile.d (they would source /etc/pbs.conf in every login)
  await step("make install", ["make", "install", `sysprofiledir=${path.join(exec, "etc", "profile.d")}`], 20 * 60_000);
  // Unprivileged clients authenticate through the setuid pbs_iff (resvport).
  for (const bin of ["pbs_iff", "pbs_rcp"]) fs.chmodSync(path.join(exec, "sbin", bin), 0o4755);
  // The lab's unprivileged test user must reach PBS_EXEC.
  for (const d of [cacheRoot(), dir]) fs.chmodSync(d, 0o755);
  removeTree(src);
  t("build total", t0);
  fs.writeFileSync(path.join(dir, "complete"), `${JSON.stringify({ sha256: r.sha256, timings: r.timings })}\n`);
}

if (import.meta.main) {
  const t0 = performance.now();
  try {
    const r = await ensurePbsBuilt((s) => console.error(`[pbs-build ${new Date().toISOString().slice(11, 19)}] ${s}`));
    const secs = Math.round((performance.now() - t0) / 1000);
    console.error(`[pbs-build] ${r.built ? `built in ${secs} s` : "already built"}: ${r.exec}`);
    console.log(r.exec);
  } catch (e) {
    console.error(`[pbs-build] ${(e as Error).message}`);
    process.exit(1);
  }
}
