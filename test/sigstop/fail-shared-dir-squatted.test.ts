// Expected: another local user who makes the victim's default shared directory first (/tmp/nix-sigstop-<uid>,
// and /tmp/nix-sigstop-shared, which nix-sigstop used before for everyone) steers nothing: a directory of
// theirs, or a symbolic link to a directory of the victim's, is refused with one warning and the victim's run
// works without turn-taking; the victim's files keep their mode and content, and nothing is written into the
// victim's directory. Unsquatted, the victim's runs share /tmp/nix-sigstop-<uid>: theirs alone (0700).
import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { startNixLab, type NixLab } from "../lab/nix.ts";
import { freeUids, ifdRunAs, runAs, userEnv } from "./other-user.ts";

const LEGACY = "/tmp/nix-sigstop-shared";
let lab: NixLab;
const made: string[] = [];
beforeAll(async () => {
  lab = await startNixLab({ daemon: true, name: "shared-squat", extraConf: "trusted-users = *" });
});
afterEach(() => {
  for (const d of made.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
afterAll(async () => {
  await lab?.cleanup();
});

/** The other user takes `dir` first, unless it exists (the legacy path may, on a shared machine). */
function squat(other: number, dir: string, how: string): void {
  if (fs.lstatSync(dir, { throwIfNoEntry: false })) return;
  made.push(dir);
  runAs(other, ["sh", "-c", how]);
}

test.each([
  ["a directory of theirs with resume.lock linked to the victim's file", (d: string, precious: string) =>
    `mkdir -m 777 ${d} && mkdir -m 777 ${d}/stopped ${d}/waiting && ln -s ${precious} ${d}/resume.lock`],
  ["a symbolic link to a private directory of the victim's", (d: string, precious: string) =>
    `ln -s ${path.dirname(precious)} ${d}`],
])("%s: refused, the victim's files untouched", async (_name, plant) => {
  const [victim, other] = freeUids(2) as [number, number];
  const env = userEnv(lab, victim);
  const secret = path.join(env.HOME!, "secret");
  const precious = path.join(secret, "precious");
  runAs(victim, ["sh", "-c", `umask 077; mkdir ${secret} && printf precious > ${precious}`]);
  const dflt = `/tmp/nix-sigstop-${victim}`;
  for (const d of [dflt, LEGACY]) squat(other, d, plant(d, precious));

  const stderr = await ifdRunAs(lab, victim, env);
  expect(fs.lstatSync(precious).mode & 0o7777).toBe(0o600);
  expect(fs.readFileSync(precious, "utf8")).toBe("precious");
  expect(fs.readdirSync(secret)).toEqual(["precious"]);
  expect(stderr).toMatch(new RegExp(`warning: .*${dflt}`)); // said once, naming the directory
}, 60000);

test("unsquatted: the victim's own /tmp/nix-sigstop-<uid>, 0700, with a 0600 lock", async () => {
  const [victim] = freeUids(1) as [number];
  const env = userEnv(lab, victim);
  const dflt = `/tmp/nix-sigstop-${victim}`;
  made.push(dflt);
  const stderr = await ifdRunAs(lab, victim, env);
  expect(stderr).not.toContain("not using the shared directory");
  const st = fs.lstatSync(dflt);
  expect([st.isDirectory(), st.uid, st.mode & 0o7777]).toEqual([true, victim, 0o700]);
  const lock = fs.lstatSync(path.join(dflt, "resume.lock"));
  expect([lock.isFile(), lock.uid, lock.mode & 0o7777]).toEqual([true, victim, 0o600]);
}, 60000);
