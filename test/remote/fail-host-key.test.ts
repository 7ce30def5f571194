// Expected: nsh never accepts a host key blindly. A key that differs from known_hosts is refused
// with both fingerprints' whereabouts named; an unknown host is refused with how to fix it; a key
// pinned in nsh.conf `trusted` is accepted even when known_hosts does not know the host.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { startNixLab, type NixLab } from "../lab/nix.ts";
import { startSshd, type SshdLab } from "../lab/sshd.ts";
import { buildMany, nshCopy } from "./helpers.ts";

let lab: NixLab;
let sshd: SshdLab;
let top: string;
beforeAll(async () => {
  lab = await startNixLab({ name: "hostkey" });
  sshd = await startSshd(lab);
  top = await buildMany(lab, 2, 0);
});
afterAll(async () => {
  await lab?.cleanup();
});

/** The lab's ssh config with another known_hosts file. */
function configWithKnownHosts(name: string, knownHostsText: string): string {
  const kh = path.join(lab.root, `${name}.known_hosts`);
  fs.writeFileSync(kh, knownHostsText);
  const cfg = path.join(lab.root, `${name}.ssh_config`);
  fs.writeFileSync(cfg, fs.readFileSync(sshd.configFile, "utf8").replace(/UserKnownHostsFile .*/, `UserKnownHostsFile ${kh}`));
  return cfg;
}

function otherKey(): string {
  const f = path.join(lab.root, `other-${Date.now()}`);
  Bun.spawnSync(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f]);
  return fs.readFileSync(`${f}.pub`, "utf8").split(" ").slice(0, 2).join(" ");
}

test("a mismatching host key is refused, naming the presented fingerprint and the known_hosts line", async () => {
  const cfg = configWithKnownHosts("mismatch", `${sshd.alias} ${otherKey()}\n`);
  const r = await nshCopy(lab, ["--to", sshd.alias, "--ssh-config", cfg, "--remote-store", sshd.remoteStore, top]);
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/SHA256:[A-Za-z0-9+/]{43}/);
  expect(r.stderr).toContain("mismatch.known_hosts:1");
  expect((await lab.run(["nix-store", "--store", sshd.remoteStore, "--check-validity", top])).code).not.toBe(0);
});

test("an unknown host is refused with the fix; a key pinned in nsh.conf is accepted", async () => {
  const cfg = configWithKnownHosts("unknown", "");
  const refused = await nshCopy(lab, ["--to", sshd.alias, "--ssh-config", cfg, "--remote-store", sshd.remoteStore, top]);
  expect(refused.code).toBe(1);
  expect(refused.stderr).toMatch(/unknown|not known|no host key/i);
  const conf = path.join(lab.root, "nsh-pinned.conf");
  fs.writeFileSync(conf, `trusted = ${sshd.alias} ${sshd.hostPublicKey}\n`);
  const pinned = await nshCopy(lab, ["--to", sshd.alias, "--ssh-config", cfg, "--remote-store", sshd.remoteStore, top], { NSH_CONF: conf });
  expect(pinned.stderr).toContain("copied 3 paths");
  expect(pinned.code).toBe(0);
});
