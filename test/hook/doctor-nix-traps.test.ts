// Expected: `nsh doctor` tells a user when Nix will not run nsh although they configured it:
//   - with `build-hook = nsh` in the system nix.conf, on Nix 2.25–2.33 (trixie: 2.26.3) a failed
//     "build-hook" check says Nix ignores it there and what to do instead; on 2.8 and 2.34 the check
//     passes. The bug itself is shown live: that Nix's own `nix show-config` reports another hook.
//   - a user not in trusted-users, talking to a daemon whose nix.conf does not run nsh, is told that
//     the daemon ignores their `--option build-hook` without a word (checked as user nobody).
// Runs on the Nix that NSH_LAB_SUITE picks (the untrusted case on the host's Nix).
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { startNixLab, type NixLab } from "../lab/nix.ts";
import { DIST_NSH } from "./harness.ts";

let lab: NixLab;
let dir: string;
beforeAll(async () => {
  lab = await startNixLab({ name: "doctor-nix", extraConf: `build-hook = ${DIST_NSH}` });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-doctor-nix-"));
  fs.chmodSync(dir, 0o755);
  fs.writeFileSync(path.join(dir, "nsh.conf"), "");
}, 180000);
afterAll(async () => {
  await lab?.cleanup();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const affected = () => lab.nixVersionNumbers[0] === 2 && lab.nixVersionNumbers[1]! >= 25 && lab.nixVersionNumbers[1]! <= 33;

/** `nsh doctor`'s lines for the checks named `what`. */
function doctorLines(stdout: string, what: string): string[] {
  return stdout.split("\n").filter((l) => l.slice(6).startsWith(`${what}:`));
}

test("build-hook = nsh in the system nix.conf: doctor fails it exactly on Nix 2.25–2.33", async () => {
  // What Nix itself makes of the setting (the client reads the same nix.conf, through the same main).
  const shown = await lab.run(["nix", "--extra-experimental-features", "nix-command", "show-config"]);
  const effective = /^build-hook = (.*)$/m.exec(shown.stdout)?.[1]?.trim();
  console.log(`${lab.nixVersion}: nix.conf says build-hook = ${DIST_NSH}; Nix reports build-hook = ${effective}`);
  expect(effective === DIST_NSH).toBe(!affected());

  const r = await lab.run([DIST_NSH, "doctor"], { env: { NSH_CONF: path.join(dir, "nsh.conf") } });
  const lines = doctorLines(r.stdout, "build-hook");
  console.log(lines.join("\n"));
  expect(lines).toHaveLength(1);
  if (affected()) {
    expect(lines[0]).toStartWith("FAIL");
    expect(lines[0]).toContain("ignores build-hook");
    expect(lines[0]).toContain("--option build-hook");
    expect(r.code).toBe(1);
  } else {
    expect(lines[0]).toStartWith("ok");
    expect(lines[0]).toContain("the system nix.conf runs nsh");
  }
}, 120000);

test("an untrusted user is told the daemon ignores their --option build-hook", async () => {
  const conf = path.join(dir, "etc");
  fs.mkdirSync(conf, { recursive: true });
  fs.writeFileSync(path.join(conf, "nix.conf"), "trusted-users = root\n");
  const env = { PATH: "/usr/bin:/bin", HOME: dir, NIX_CONF_DIR: conf, NIX_REMOTE: "daemon", NSH_CONF: path.join(dir, "nsh.conf") };
  const p = Bun.spawn(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", DIST_NSH, "doctor"], { env, stdout: "pipe", stderr: "pipe" });
  const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  const lines = doctorLines(out, "build-hook from you");
  if (lines.length !== 1) console.log(out, err);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toStartWith("FAIL");
  expect(lines[0]).toContain("ignores `--option build-hook <nsh>` from user nobody");
  expect(lines[0]).toContain("add nobody to trusted-users");
}, 60000);
