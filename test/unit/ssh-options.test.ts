// nsh.conf's ssh settings → the options of every ssh pool nsh makes (pure): `trusted` pins by
// name or pattern (exclusive: only the matching entries' keys), ssh-connect-timeout as the timeout
// of hosts whose ssh config sets none (a ConnectTimeout there wins), --ssh-config over ssh-config,
// and a malformed pin said before anything connects, naming the setting.
import { expect, test } from "bun:test";
import fs from "node:fs";
import { sshPoolOptions, SshSettingsError, trustedPins } from "../../src/remote/ssh-options.ts";
import { parseSshConfig, resolveHost } from "../../src/remote/ssh-config.ts";
import { remoteServeCommand } from "../../src/remote/open-store.ts";
import { openSshArgv } from "../../src/remote/openssh.ts";

const A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGN6zdglB4/BmAd6YIqookmtAO94sLqKtG7QGd1KhV6m";
const B = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOizccDETTC0BU24D5I5Hz6PhGRPmYnIgVT5/QtkMLbm";
const base = { "ssh-config": "", trusted: [] as string[], "ssh-connect-timeout": 15 };
const host = (alias: string, hostname = alias) => ({ alias, hostname });

test.each([
  [["login1", ...A.split(" ")], host("login1"), [A]],
  [["login1", ...A.split(" ")], host("login2"), []],
  [["login1,node1", ...A.split(" ")], host("node1"), [A]],
  [["node*", ...A.split(" "), "node7", ...B.split(" ")], host("node7"), [A, B]],
  [["node?", ...A.split(" ")], host("node12"), []],
  [["10.0.0.5", ...A.split(" ")], host("n5", "10.0.0.5"), [A]],
  [["*.cluster", ...B.split(" ")], host("gpu3.cluster"), [B]],
])("trusted %j: pins for %j", (trusted, h, want) => {
  expect(trustedPins(trusted)(h)).toEqual(want);
});

test.each([
  [["node1", "ssh-ed25519"], /nsh\.conf: 'trusted' expects HOSTS KEYTYPE BASE64 triples/],
  [["node1", "ssh-ed25519", "bm90LWEta2V5"], /nsh\.conf: 'trusted' for node1: not a public key/],
  [["node1", "ssh-rsa", A.split(" ")[1]!], /nsh\.conf: 'trusted' for node1: .*does not match/],
])("malformed trusted %j is an error naming the setting", (trusted, message) => {
  expect(() => sshPoolOptions({ ...base, trusted })).toThrow(SshSettingsError);
  expect(() => sshPoolOptions({ ...base, trusted })).toThrow(message);
});

test("the pool options carry the pins, the config file and the timeout", () => {
  const o = sshPoolOptions({ "ssh-config": "/etc/nsh/ssh_config", trusted: ["node1", ...A.split(" ")], "ssh-connect-timeout": 4 });
  expect(o.configFile).toBe("/etc/nsh/ssh_config");
  expect(o.connectTimeout).toEqual({ connectTimeoutMs: 4000, connectTimeoutFrom: "nsh.conf ssh-connect-timeout" });
  expect(typeof o.trusted === "function" && o.trusted({ ...resolveHost(parseSshConfig(""), "node1") })).toEqual([A]);
  // A command's --ssh-config replaces the setting; 0 leaves nsh's own default.
  expect(sshPoolOptions({ ...base, "ssh-config": "/a" }, { configFile: "/b" }).configFile).toBe("/b");
  expect(sshPoolOptions({ ...base, "ssh-connect-timeout": 0 }).connectTimeout).toBeUndefined();
  expect(sshPoolOptions(base).configFile).toBeUndefined();
});

test("ssh-connect-timeout applies where the ssh config sets no ConnectTimeout; a ConnectTimeout there wins", () => {
  const defaults = sshPoolOptions({ ...base, "ssh-connect-timeout": 3 }).connectTimeout;
  const config = parseSshConfig("Host slow\n  ConnectTimeout 40\n", { file: "/cfg" });
  expect(resolveHost(config, "fast", defaults)).toMatchObject({ connectTimeoutMs: 3000, connectTimeoutFrom: "nsh.conf ssh-connect-timeout" });
  expect(resolveHost(config, "slow", defaults)).toMatchObject({ connectTimeoutMs: 40000, connectTimeoutFrom: "ConnectTimeout at /cfg:2" });
  expect(resolveHost(config, "fast")).toMatchObject({ connectTimeoutMs: 20000, connectTimeoutFrom: "nsh's default" });
  // OpenSSH's bulk session gets the same timeout as the connection that verified the host.
  const argv = openSshArgv({ alias: "fast", host: resolveHost(config, "fast", defaults), knownHostsFile: "/k" }, "true");
  expect(argv).toContain("ConnectTimeout=3");
});

test.each([
  [{}, "nix-store --serve --write"],
  [{ storeDir: "/nix/store" }, "nix-store --serve --write"],
  [{ storeDir: "/cluster/store", remoteStore: "auto" }, "/usr/bin/env NIX_STORE_DIR=/cluster/store nix-store --serve --write"],
  [{ storeDir: "/s p", nixBinDir: "/opt/nix/bin/", remoteStore: "local?root=/r" }, "/usr/bin/env 'NIX_STORE_DIR=/s p' /opt/nix/bin/nix-store --serve --write --store 'local?root=/r'"],
])("remote serve command %j → %s: the store directory goes with every remote nix command", (opts, want) => {
  expect(remoteServeCommand(opts)).toBe(want);
});

test("every ssh pool nsh makes takes its options from nsh.conf through sshPoolOptions", () => {
  // A static check: a pool made any other way would miss the pins and the timeout.
  const glob = new Bun.Glob("**/*.ts");
  const root = `${import.meta.dir}/../../src`;
  const found: string[] = [];
  for (const file of glob.scanSync(root)) {
    const text = fs.readFileSync(`${root}/${file}`, "utf8");
    for (const m of text.matchAll(/new SshPool\((\w*)/g)) found.push(`${file}: ${m[1]}`);
  }
  expect(found.length).toBeGreaterThanOrEqual(3); // the hook, nsh copy, nsh doctor
  expect(found.filter((f) => !f.endsWith(": sshPoolOptions"))).toEqual([]);
});
