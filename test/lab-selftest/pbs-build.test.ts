// The OpenPBS build cache (test/lab/pbs-build.ts), with a stand-in source tarball
// (autogen/configure/make that only create the files the cache checks) so it
// runs in seconds: two test processes asking at once build once; a warm cache
// does not rebuild; another tarball gets its own entry; a build killed midway
// leaves no "complete" marker, blocks nobody, and is redone by the next call.
// The real build is exercised by pbs.test.ts and scripts/setup.sh.
import { afterAll, beforeAll, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ensurePbsBuilt, missingPackages, PBS_PACKAGES } from "../lab/pbs-build.ts";
import { isAlive, runCommand, waitUntil } from "../lab/proc.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-pbs-build-"));
const vendor = path.join(dir, "vendor");
const cache = path.join(dir, "cache");
const counter = path.join(dir, "makes");
const slow = path.join(dir, "slow"); // while it exists, the stand-in make waits
const saved = { cache: process.env.NSH_LAB_CACHE, vendor: process.env.NSH_OPENPBS_VENDOR };

const makefile = [
  "include config.mk",
  "all:",
  `\twhile [ -e ${slow} ]; do sleep 0.2; done`,
  `\techo built >> ${counter}`,
  "install:",
  "\tmkdir -p $(PREFIX)/sbin",
  "\ttouch $(PREFIX)/sbin/pbs_server.bin $(PREFIX)/sbin/pbs_iff $(PREFIX)/sbin/pbs_rcp",
  "",
].join("\n");

/** Write vendor/openpbs-fake.tar.xz; `variant` changes its hash. */
async function makeTarball(variant: string): Promise<void> {
  const src = path.join(dir, "src", "openpbs-fake");
  fs.rmSync(path.join(dir, "src"), { recursive: true, force: true });
  fs.mkdirSync(src, { recursive: true });
  fs.writeFileSync(path.join(src, "autogen.sh"), "#!/bin/sh\nexit 0\n", { mode: 0o755 });
  const configure = '#!/bin/sh\necho "PREFIX=${1#--prefix=}" > config.mk\n';
  fs.writeFileSync(path.join(src, "configure"), configure, { mode: 0o755 });
  fs.writeFileSync(path.join(src, "Makefile"), makefile);
  fs.writeFileSync(path.join(src, "VARIANT"), variant);
  fs.rmSync(vendor, { recursive: true, force: true });
  fs.mkdirSync(vendor);
  const r = await runCommand(["tar", "-cJf", path.join(vendor, "openpbs-fake.tar.xz"), "-C", path.join(dir, "src"),
    "openpbs-fake"], { env: { PATH: "/usr/bin:/bin" } });
  expect(r.code, r.stderr).toBe(0);
}
/** PIDs of stand-in makes waiting on `slow`. */
function waitingMakes(): number[] {
  return fs.readdirSync("/proc").filter((n) => /^\d+$/.test(n)).map(Number).filter((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, "latin1").includes(slow) && isAlive(pid);
    } catch {
      return false;
    }
  });
}
const makes = (): number => (fs.existsSync(counter) ? fs.readFileSync(counter, "utf8").split("\n").length - 1 : 0);

beforeAll(async () => {
  process.env.NSH_LAB_CACHE = cache;
  process.env.NSH_OPENPBS_VENDOR = vendor;
  const missing = await missingPackages(PBS_PACKAGES);
  if (missing.length > 0) throw new Error(`run scripts/setup.sh first; missing packages: ${missing.join(" ")}`);
  await makeTarball("a");
});

afterAll(() => {
  for (const [k, v] of [["NSH_LAB_CACHE", saved.cache], ["NSH_OPENPBS_VENDOR", saved.vendor]] as const) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

test("two callers at once: one builds, both get the same complete install", async () => {
  const [x, y] = await Promise.all([ensurePbsBuilt(), ensurePbsBuilt()]);
  expect([x.built, y.built].sort()).toEqual([false, true]);
  expect(x.exec).toBe(y.exec);
  expect(makes()).toBe(1);
  expect(x.dir).toBe(path.join(cache, `openpbs-${x.sha256.slice(0, 12)}`));
  expect(fs.existsSync(path.join(x.dir, "complete"))).toBe(true);
  expect(fs.statSync(path.join(x.exec, "sbin", "pbs_iff")).mode & 0o4000).toBe(0o4000); // setuid for clients
  expect(fs.existsSync(path.join(x.dir, "src"))).toBe(false);
});

test("warm: nothing is built again", async () => {
  const r = await ensurePbsBuilt();
  expect(r.built).toBe(false);
  expect(makes()).toBe(1);
});

test("another tarball gets its own cache entry", async () => {
  const before = await ensurePbsBuilt();
  await makeTarball("b");
  const r = await ensurePbsBuilt();
  expect(r.built).toBe(true);
  expect(r.dir).not.toBe(before.dir);
  expect(fs.existsSync(path.join(before.dir, "complete"))).toBe(true);
});

test("a build killed midway leaves no marker, holds no lock, and is redone", async () => {
  await makeTarball("c");
  fs.writeFileSync(slow, "");
  const module = JSON.stringify(path.join(import.meta.dir, "..", "lab", "pbs-build.ts"));
  const child = Bun.spawn([process.execPath, "-e", `await (await import(${module})).ensurePbsBuilt();`], {
    env: { ...process.env },
    stdout: "ignore",
    stderr: "ignore",
  });
  const building = (n: string): boolean =>
    fs.existsSync(path.join(cache, n, "build-logs", "make.log")) && !fs.existsSync(path.join(cache, n, "complete"));
  const makeLog = (): string | undefined => {
    try {
      return fs.readdirSync(cache).find((n) => !n.endsWith(".lock") && building(n));
    } catch {
      return undefined;
    }
  };
  expect(await waitUntil(() => makeLog() !== undefined && waitingMakes().length > 0, 60_000)).toBe(true);
  const entry = makeLog()!;
  child.kill("SIGKILL");
  await child.exited;
  // its watchdog ends the waiting make; only then may a make finish again
  expect(await waitUntil(() => waitingMakes().length === 0, 30_000)).toBe(true);
  fs.rmSync(slow);
  expect(fs.existsSync(path.join(cache, entry, "complete"))).toBe(false);
  const before = makes();
  const r = await ensurePbsBuilt(); // must not wait on the dead build's lock
  expect(r.built).toBe(true);
  expect(path.basename(r.dir)).toBe(entry);
  expect(makes()).toBe(before + 1);
}, 120_000);
