// nsh copy over a real sshd (127.0.0.1) between real Nix 2.8 stores: closures of many small paths
// and a large one arrive whole in both directions, nothing the other side has is sent again, the
// progress is reported as JSON events, and a remote without nix on PATH works with
// --remote-nix-bin-dir.
import { afterAll, beforeAll, expect, test } from "bun:test";
import path from "node:path";
import { startNixLab, type NixLab } from "../lab/nix.ts";
import { startSshd, type SshdLab } from "../lab/sshd.ts";
import { buildMany, nshCopy } from "./helpers.ts";

let lab: NixLab;
let sshd: SshdLab;
let noNix: SshdLab;
beforeAll(async () => {
  lab = await startNixLab({ name: "cpssh" });
  sshd = await startSshd(lab);
  noNix = await startSshd(lab, { alias: "nonix", setEnv: { PATH: "/nonexistent" }, remoteRoot: path.join(lab.root, "r2") });
});
afterAll(async () => {
  await lab?.cleanup();
});

test("to a host: 40 small paths and a 30 MiB one, then nothing again", async () => {
  const top = await buildMany(lab, 40, 30);
  const first = await nshCopy(lab, ["--json", "--to", sshd.alias, "--ssh-config", sshd.configFile, "--remote-store", sshd.remoteStore, top]);
  expect(first.code).toBe(0);
  const events = first.stdout.trim().split("\n").map((l) => JSON.parse(l));
  expect(events.filter((e) => e.event === "path-done" && e.ok).length).toBe(42);
  expect(events.at(-1)).toEqual({ event: "end", ok: true });
  const verify = await lab.run(["nix-store", "--store", sshd.remoteStore, "--verify", "--check-contents"]);
  expect(verify.code).toBe(0);
  expect((await lab.run(["nix-store", "--store", sshd.remoteStore, "-q", "--hash", top])).stdout).toBe((await lab.run(["nix-store", "-q", "--hash", top])).stdout);
  const again = await nshCopy(lab, ["--json", "--to", sshd.alias, "--ssh-config", sshd.configFile, "--remote-store", sshd.remoteStore, top]);
  expect(again.code).toBe(0);
  expect(again.stdout).not.toContain("path-start");
});

test("from a host into the local store", async () => {
  // Build in the remote store only, then fetch it.
  const b = await lab.run(["nix-build", "--store", sshd.remoteStore, lab.expr("many"), "--argstr", "salt", `from${Date.now()}`, "--arg", "n", "10", "--no-out-link"]);
  expect(b.code).toBe(0);
  const top = b.stdout.trim();
  expect((await lab.run(["nix-store", "--check-validity", top])).code).not.toBe(0);
  const r = await nshCopy(lab, ["--from", sshd.alias, "--ssh-config", sshd.configFile, "--remote-store", sshd.remoteStore, top]);
  expect(r.stderr).toContain("copied 11 paths");
  expect(r.code).toBe(0);
  expect((await lab.run(["nix-store", "--check-validity", top])).code).toBe(0);
});

test("a remote without nix on PATH: a clear message, then success with --remote-nix-bin-dir", async () => {
  const top = await buildMany(lab, 3, 0);
  const bad = await nshCopy(lab, ["--to", noNix.alias, "--ssh-config", noNix.configFile, "--remote-store", noNix.remoteStore, top]);
  expect(bad.code).toBe(1);
  expect(bad.stderr).toContain("set remote-nix-bin-dir");
  const good = await nshCopy(lab, ["--to", noNix.alias, "--ssh-config", noNix.configFile, "--remote-store", noNix.remoteStore, "--remote-nix-bin-dir", "/usr/bin", top]);
  expect(good.stderr).toContain("copied 4 paths");
  expect(good.code).toBe(0);
});
