// Expected: `nsh copy --to` never takes its shared validity cache's word over the destination's.
// When paths copied to a host are gone from it (deleted, or the host's garbage collector took the
// whole closure), copying again sends what is missing: exit 0 and the closure valid on the host.
// (Before the fix: "copied 0 paths; N were there already", exit 0, and the path absent.)
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startNixLab, type NixLab } from "../lab/nix.ts";
import { startSshd, type SshdLab } from "../lab/sshd.ts";
import { buildMany, nshCopy } from "./helpers.ts";

let lab: NixLab;
let sshd: SshdLab;
beforeAll(async () => {
  lab = await startNixLab({ name: "cplost" });
  sshd = await startSshd(lab);
});
afterAll(async () => {
  await lab?.cleanup();
});

const copyTo = (top: string) => nshCopy(lab, ["--to", sshd.alias, "--ssh-config", sshd.configFile, "--remote-store", sshd.remoteStore, top]);
const validThere = async (p: string) => (await lab.run(["nix-store", "--store", sshd.remoteStore, "--check-validity", p])).code === 0;
const closureOf = async (p: string) => (await lab.run(["nix-store", "-qR", p])).stdout.trim().split("\n");

test.each([
  ["the path was deleted on the host", ["--delete"]],
  ["the host's garbage collector took the whole closure", ["--gc"]],
])("%s: copying again brings it back", async (_what, removal) => {
  const top = await buildMany(lab, 3, 0);
  const first = await copyTo(top);
  expect(first.code).toBe(0);
  expect(await validThere(top)).toBe(true);

  const rm = await lab.run(["nix-store", "--store", sshd.remoteStore, ...removal, ...(removal[0] === "--delete" ? [top] : [])]);
  expect(rm.code).toBe(0);
  expect(await validThere(top)).toBe(false);

  const again = await copyTo(top);
  expect(again.code).toBe(0);
  for (const p of await closureOf(top)) expect(await validThere(p)).toBe(true);
  const verify = await lab.run(["nix-store", "--store", sshd.remoteStore, "--verify-path", top]);
  expect(verify.code).toBe(0);
});
