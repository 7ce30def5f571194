// Expected: when the Nix that started nsh is gone from where /proc/<nix>/exe points ("…/bin/nix
// (deleted)": its package was upgraded or collected while the daemon runs), a build nsh declines
// still reaches Nix's own build hook, found next to the nix on PATH; and with no nix on PATH either,
// nsh says that the hook is not there and what to set (fallback-build-hook), declines the build
// (Nix builds it locally if it can), and exits cleanly: no stack trace, no attempt to run a missing file.
// Real processes: the parent is a copy of bash named `nix` that deletes itself before starting dist/nsh.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { concat } from "../../src/nix/wire.ts";
import { DIST_NSH, request, settingsBlob, tryReq } from "./harness.ts";

let dir: string;
let conf: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-exe-gone-"));
  conf = path.join(dir, "nsh.conf");
  // Derivations without the nsh feature are not nsh's: each goes to the fallback hook.
  fs.writeFileSync(conf, "mandatory-system-features = nsh\n");
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const drv = `/nix/store/${"a".repeat(32)}-x.drv`;
// No machine for this system: Nix's build-remote answers `# decline` without connecting anywhere.
const input = concat([settingsBlob([["builders", "ssh://nowhere aarch64-none"], ["max-jobs", "1"]]), request(tryReq(drv))]);

/** dist/nsh as a build hook whose parent's /proc/<pid>/exe reads "<dir>/bin/nix (deleted)". */
async function hookUnderDeletedNix(name: string, PATH: string) {
  const bin = path.join(dir, name, "bin");
  fs.mkdirSync(bin, { recursive: true });
  const nix = path.join(bin, "nix");
  fs.copyFileSync("/bin/bash", nix);
  fs.chmodSync(nix, 0o755);
  const inFile = path.join(dir, name, "in");
  fs.writeFileSync(inFile, input);
  const p = Bun.spawn([nix, "-c", '/bin/rm -f "$0"; "$1" 7 < "$2"; echo "hook exit $?" >&2', nix, DIST_NSH, inFile], {
    env: { PATH, NSH_CONF: conf, HOME: dir },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stderr] = await Promise.all([new Response(p.stderr).text(), p.exited]);
  expect(fs.existsSync(nix)).toBe(false);
  return stderr;
}

test("the daemon's nix deleted: the nix on PATH provides the fallback hook", async () => {
  const err = await hookUnderDeletedNix("onpath", "/usr/bin:/bin");
  if (!err.includes("hook exit 0")) console.log(err);
  expect(err).toContain("hook exit 0");
  expect(err).toMatch(/started '\/usr\/(libexec\/nix\/build-remote|bin\/nix __build-remote)' \(pid \d+\) for the builds nsh declines/);
  expect(err).not.toContain("cannot start");
  expect(err).toContain("# decline");
});

test("no nix anywhere: a clear message naming fallback-build-hook, the build declined, exit 0", async () => {
  const empty = path.join(dir, "empty");
  fs.mkdirSync(empty);
  const err = await hookUnderDeletedNix("nowhere", empty);
  if (!err.includes("set fallback-build-hook")) console.log(err);
  expect(err).toContain("Nix's own build hook is not there");
  expect(err).toContain("set fallback-build-hook in nsh.conf");
  expect(err).toContain("# decline");
  expect(err).toContain("hook exit 0");
  expect(err).not.toMatch(/^\s+at .+:\d+:\d+/m);
});
