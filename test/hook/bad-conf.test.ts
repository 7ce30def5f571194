// Expected: a malformed nsh.conf never breaks the user's build. Every error is shown to the user
// as Nix's own error message naming file:line (also through the daemon, which forwards level-0
// messages to the client), nsh takes nothing, and the build goes to Nix's build-remote (here over
// ssh) or, with no builders, is built locally. A fallback-build-hook that is nsh itself is refused
// (no hook loop) and the build is local. Nix 2.8.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { NSH_SETTINGS } from "../../src/config/nsh-conf.ts";
import { startNixLab, type NixLab } from "../lab/nix.ts";
import { buildersLine, startSshd, type SshdLab } from "../lab/sshd.ts";
import { DIST_NSH } from "./harness.ts";

let lab: NixLab;
let sshd: SshdLab;
let conf: string;
beforeAll(async () => {
  lab = await startNixLab({ name: "badconf" });
  sshd = await startSshd(lab);
  await lab.startDaemon({ NIX_SSHOPTS: sshd.sshOpts });
  conf = path.join(lab.confDir, "nsh.conf");
  // without the bad lines the lab's derivations would be the cluster's (default system and features)
  fs.writeFileSync(conf, "# nsh.conf with mistakes\njob-scheduler = lsf\nthis is not a setting\n");
});
afterAll(async () => {
  await lab?.cleanup();
});

const salt = () => `bc${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const errors = () => [
  `${conf}:2: 'job-scheduler' expects one of ${NSH_SETTINGS["job-scheduler"].kind.enum.join(", ")}, got 'lsf'`,
  `${conf}:3: expected 'name = value', 'include path' or '!include path', got 'this is not a setting'`,
];

test("single-user with builders: the error is shown and build-remote builds over ssh", async () => {
  const s = salt();
  const r = await lab.run(
    ["nix-build", lab.expr("remote"), "--argstr", "salt", s, "--no-out-link", "--option", "build-hook", DIST_NSH, "--option", "max-jobs", "0", "--builders", buildersLine(sshd)],
    { env: { NIX_SSHOPTS: sshd.sshOpts } },
  );
  expect(r.code).toBe(0);
  for (const e of errors()) expect(r.stderr).toContain(e);
  expect(r.stderr).toContain("nsh builds nothing on the cluster until nsh.conf is fixed");
  expect(r.stderr).toContain(`on 'ssh://${sshd.alias}`);
  expect(fs.readFileSync(path.join(lab.storeDir, path.basename(r.stdout.trim())), "utf8")).toBe(`remote ${s}\n`);
});

test("through the daemon, no builders: the error reaches the client and the build is local", async () => {
  const s = salt();
  const r = await lab.run(["nix-build", "--store", "daemon", lab.expr("remote"), "--argstr", "salt", s, "--no-out-link", "--option", "build-hook", DIST_NSH, "--builders", ""]);
  expect(r.code).toBe(0);
  for (const e of errors()) expect(r.stderr).toContain(e);
  expect(r.stderr).toContain(`building remote ${s}`);
  expect(r.stderr).not.toMatch(/building '.*' on '/);
  expect(fs.readFileSync(path.join(lab.storeDir, path.basename(r.stdout.trim())), "utf8")).toBe(`remote ${s}\n`);
});

test("fallback-build-hook naming nsh itself: an error instead of a loop, and the build is local", async () => {
  fs.writeFileSync(conf, `mandatory-system-features = nsh\nfallback-build-hook = ${DIST_NSH}\n`);
  const s = salt();
  const r = await lab.run(["nix-build", lab.expr("remote"), "--argstr", "salt", s, "--no-out-link", "--option", "build-hook", DIST_NSH, "--builders", ""]);
  expect(r.code).toBe(0);
  expect(r.stderr).toContain(`nsh: error: fallback-build-hook '${DIST_NSH}' is nsh itself; declined builds are built locally instead`);
  expect(fs.readFileSync(path.join(lab.storeDir, path.basename(r.stdout.trim())), "utf8")).toBe(`remote ${s}\n`);
});
