// Expected: a remote store nsh cannot write, and a remote disk that fills up mid-copy, give a clear
// error naming the host and the problem; no path is left half-registered.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { startNixLab, type NixLab } from "../lab/nix.ts";
import { startSshd, type SshdLab } from "../lab/sshd.ts";
import { buildMany, nshCopy } from "./helpers.ts";

let lab: NixLab;
let sshd: SshdLab;
let full: string;
beforeAll(async () => {
  lab = await startNixLab({ name: "rstore" });
  sshd = await startSshd(lab);
  full = path.join(lab.root, "full");
  fs.mkdirSync(full);
  const m = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", full]);
  if (m.exitCode !== 0) throw new Error(`cannot mount a small tmpfs for the disk-full case: ${m.stderr}`);
  lab.addCleanup(() => void Bun.spawnSync(["umount", "-l", full]));
});
afterAll(async () => {
  await lab?.cleanup();
});

test("an unwritable remote store", async () => {
  const top = await buildMany(lab, 1, 0);
  const r = await nshCopy(lab, ["--to", sshd.alias, "--ssh-config", sshd.configFile, "--remote-store", "local?root=/proc/nsh-cannot-write-here", top]);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain(sshd.alias);
  expect(r.stderr).toMatch(/nsh-cannot-write-here/);
  expect(r.stderr).not.toContain("    at ");
});

test("the remote disk fills up: the error says so and nothing is half-registered", async () => {
  const top = await buildMany(lab, 2, 40);
  const store = `local?root=${full}`;
  const r = await nshCopy(lab, ["--to", sshd.alias, "--ssh-config", sshd.configFile, "--remote-store", store, top]);
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/No space left on device/i);
  expect(r.stderr).toContain(sshd.alias);
  expect((await lab.run(["nix-store", "--store", store, "--check-validity", top])).code).not.toBe(0);
  const big = (await lab.run(["nix-store", "-q", "--references", top])).stdout.split("\n").find((p) => p.includes("-big-"))!;
  expect((await lab.run(["nix-store", "--store", store, "--check-validity", big])).code).not.toBe(0);
});
