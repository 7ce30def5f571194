// Expected (Nix 2.34, NSH_LAB_SUITE=sid; skips on a Nix without external-builders): with build users
// (here auto-allocate-uids), Nix runs `nsh external-builder` as the build's user, not as itself, and
// kills every process of that user when it stops the build (Nix 2.34.8: DerivationBuilderImpl::
// killSandbox → killUser), nsh's job reaper included. nsh says so at the top of the build log, naming
// the user, instead of failing later with only a bare permission error (the lab's files belong to
// root, so the build then fails, without a stack trace).
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { hasStackTrace, salt } from "./helpers.ts";
import { type ExternalBuilderLab, startExternalBuilderLab } from "./external-builder-suite.ts";

// Nix refuses a build directory below a world-writable one (/tmp, /var/tmp): one in the checkout's
// tmp/ (git-ignored), which the lab's root binds in.
const BUILD_DIRS = path.resolve(import.meta.dir, "..", "..", "tmp");
let buildDir: string | undefined;
let x: ExternalBuilderLab;
beforeAll(async () => {
  x = await startExternalBuilderLab("xb-users", "slurm");
  if (!x.supported) return;
  fs.mkdirSync(BUILD_DIRS, { recursive: true, mode: 0o755 });
  buildDir = fs.mkdtempSync(path.join(BUILD_DIRS, "build-users-"));
  fs.chmodSync(buildDir, 0o755);
  const conf = path.join(x.lab.nix.confDir, "nix.conf");
  // auto-allocate-uids needs no account; build-users-group only names the builds' group.
  const text = fs.readFileSync(conf, "utf8").replace(/^build-users-group =.*$/m, "build-users-group = users");
  const users = `extra-experimental-features = auto-allocate-uids\nauto-allocate-uids = true\nbuild-dir = ${buildDir}\n`;
  fs.writeFileSync(conf, `${text}${users}`);
  await x.lab.nix.stopDaemon();
  await x.lab.nix.startDaemon({ NSH_CONF: x.lab.nshConf });
}, 180_000);
afterAll(async () => {
  await x?.lab.cleanup();
  if (buildDir) fs.rmSync(buildDir, { recursive: true, force: true });
});

test("run as a build user, nsh says which and what it costs", async () => {
  if (!x.supported) return console.log(`skipped: ${x.lab.nix.nixVersion} has no external-builders`);
  const r = await x.nixBuild(x.jobArgs(salt()));
  if (!/build user/.test(r.stderr)) console.log(r.stderr);
  expect(r.stderr).toMatch(/nsh: warning: nsh runs as build user \d+ /);
  expect(r.stderr).toMatch(/kills every process of the user, nsh's job reaper included/);
  expect(r.code).not.toBe(0);
  expect(hasStackTrace(r.stderr)).toBe(false);
}, 200_000);
