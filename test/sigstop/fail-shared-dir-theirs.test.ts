// Expected: a shared directory named with --shared-dir / NIX_SIGSTOP_SHARED_DIR that another local user
// made (and in which they planted resume.lock and stopped/ as symbolic links to the victim's own files) is
// not used: nix-sigstop says so once, and the victim's run works without turn-taking. The victim's files
// keep their mode and content (nix-sigstop used to follow resume.lock and chmod its target 0666).
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { startNixLab, type NixLab } from "../lab/nix.ts";
import { salt } from "./helpers.ts";
import { freeUids, ifdRunAs, publicDir, runAs, userEnv } from "./other-user.ts";

let lab: NixLab;
beforeAll(async () => {
  lab = await startNixLab({ daemon: true, name: "shared-theirs", extraConf: "trusted-users = *" });
});
afterAll(async () => {
  await lab?.cleanup();
});

test("another user's shared directory with planted links: refused, the victim's files untouched", async () => {
  const [victim, other] = freeUids(2) as [number, number];
  const env = userEnv(lab, victim);
  const precious = path.join(env.HOME!, "precious");
  runAs(victim, ["sh", "-c", `umask 077; printf precious > ${precious}`]);
  const shared = path.join(publicDir(lab), `shared-${salt()}`);
  // The other user's directory, open to all, as a site-wide "shared" directory would be.
  const plant = `mkdir -m 1777 ${shared} && mkdir -m 777 ${shared}/stopped ${shared}/waiting && ln -s ${precious} ${shared}/resume.lock`;
  runAs(other, ["sh", "-c", plant]);

  const stderr = await ifdRunAs(lab, victim, env, ["--shared-dir", shared]);
  expect(fs.lstatSync(precious).mode & 0o7777).toBe(0o600);
  expect(fs.readFileSync(precious, "utf8")).toBe("precious");
  expect(stderr).toMatch(new RegExp(`warning: .*${shared}`)); // said once, naming the directory
}, 60000);

