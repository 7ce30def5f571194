// Expected (the trap `nsh doctor`'s "build-hook from you" check explains; see doctor-nix-traps): a
// user not in trusted-users who passes `--option build-hook` to a nix-daemon does not get that hook.
// The daemon builds the derivation itself and nix-build succeeds, so the user sees no failure: on
// Nix 2.8 without a word, on 2.26 and 2.34 with one warning line ("ignoring the client-specified
// setting 'build-hook'"). Shown live, as user nobody, on the Nix that NSH_LAB_SUITE picks.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { startNixLab, type NixLab } from "../lab/nix.ts";

let lab: NixLab;
beforeAll(async () => {
  lab = await startNixLab({ name: "untrusted", extraConf: "trusted-users = root\nallowed-users = *" });
  await lab.startDaemon({});
  // nobody must reach the lab's store, socket and programs (the lab is root's).
  await Bun.$`chmod -R a+rX ${lab.root}; chmod a+rwx ${lab.root}; chmod 666 ${lab.env.NIX_DAEMON_SOCKET_PATH!}`.quiet().nothrow();
}, 180000);
afterAll(async () => {
  await lab?.cleanup();
});

test("an untrusted user's --option build-hook is ignored: built without the hook", async () => {
  const ran = path.join(lab.root, "hook-ran");
  const hook = path.join(lab.root, "hook.sh");
  fs.writeFileSync(hook, `#!/bin/sh\necho ran > ${ran}\nexit 1\n`, { mode: 0o755 });
  const expr = `builtins.derivation { name = "u${Date.now()}"; system = builtins.currentSystem; builder = "/bin/sh"; args = ["-c" "echo > $out"]; }`;
  const env = { ...lab.env, NIX_REMOTE: "daemon", HOME: "/tmp", TMPDIR: "/tmp", XDG_CACHE_HOME: path.join(lab.root, "nobody-cache") };
  const argv = ["nix-build", "--no-out-link", "--option", "build-hook", hook, "-E", expr];
  const p = Bun.spawn(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", ...argv], { env, stdout: "pipe", stderr: "pipe" });
  const [, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  const warned = /ignoring the client-specified setting 'build-hook'/.test(stderr);
  console.log(`${lab.nixVersion} as nobody: nix-build exit ${code}; the hook ran: ${fs.existsSync(ran)}; warned: ${warned}`);
  if (code !== 0) console.log(stderr);
  expect(code).toBe(0);
  expect(fs.existsSync(ran)).toBe(false);
}, 120000);
