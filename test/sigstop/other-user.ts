// Runs commands as other local users, for the shared-directory scenarios: a numeric uid with no passwd
// entry is enough for setpriv, nix's daemon client and nix-sigstop, so the tests change no system files.
import { expect } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import type { NixLab } from "../lab/nix.ts";
import { SIGSTOP, salt } from "./helpers.ts";

/** Two uids no passwd entry and no running process uses (a victim and another local user). */
export function freeUids(n: number): number[] {
  const taken = new Set(fs.readFileSync("/etc/passwd", "utf8").split("\n").map((l) => Number(l.split(":")[2])));
  for (const d of fs.readdirSync("/proc")) {
    try {
      if (/^\d+$/.test(d)) taken.add(fs.statSync(`/proc/${d}`).uid);
    } catch {}
  }
  const out: number[] = [];
  while (out.length < n) {
    const uid = 61000 + Math.floor(Math.random() * 3000);
    if (!taken.has(uid) && !out.includes(uid)) out.push(uid);
  }
  return out;
}

export const asUser = (uid: number, argv: string[]) =>
  ["setpriv", `--reuid=${uid}`, `--regid=${uid}`, "--clear-groups", "--", ...argv];

/** Runs argv as `uid` and waits; throws with its stderr if it fails. */
export function runAs(uid: number, argv: string[]): void {
  const r = Bun.spawnSync(asUser(uid, argv), { stdio: ["ignore", "pipe", "pipe"] });
  if (r.exitCode !== 0) throw new Error(`as uid ${uid}: ${argv.join(" ")}: ${r.stderr.toString()}`);
}

/**
 * The lab's environment for `uid`: its own HOME and TMPDIR, the lab's daemon (which must trust everyone,
 * as nix ignores build-hook from untrusted users), and the lab's files readable.
 */
export function userEnv(lab: NixLab, uid: number): Record<string, string> {
  fs.chmodSync(lab.root, 0o755);
  const home = path.join(lab.root, `home-${uid}`);
  for (const d of [home, path.join(home, "tmp")]) {
    fs.mkdirSync(d, { recursive: true, mode: 0o700 });
    fs.chownSync(d, uid, uid);
  }
  const env = { ...lab.env, HOME: home, TMPDIR: path.join(home, "tmp") } as Record<string, string>;
  for (const k of ["XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR"]) {
    delete env[k];
  }
  return env;
}

/** A directory like /tmp (1777) inside the lab, where any user may create entries. */
export function publicDir(lab: NixLab): string {
  const dir = path.join(lab.root, "public");
  fs.mkdirSync(dir, { recursive: true });
  fs.chmodSync(dir, 0o1777);
  return dir;
}

/**
 * nix-sigstop as `uid` (environment from userEnv) on an evaluation whose IFD build stops nix once; it must
 * work and give the right value. Returns its stderr.
 */
export async function ifdRunAs(lab: NixLab, uid: number, env: Record<string, string>, sigstopArgs: string[] = []) {
  const s = salt();
  const expr = `(import ${lab.expr("ifd-sleep")} { salt = "${s}"; sleep = "1"; }).value`;
  const argv = [SIGSTOP, ...sigstopArgs, "--resume-fast-path", "0", "eval", "--store", "daemon", "--impure", "--raw", "--expr", expr];
  const p = Bun.spawn(asUser(uid, argv), { env, stdio: ["ignore", "pipe", "pipe"] });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  expect(code).toBe(0);
  expect(stdout).toBe(`ifd-${s}`);
  expect(stderr).toContain("stopped nix"); // the run did go through a stop and a resumption
  return stderr;
}
