// Expected: NARs of at least openssh-min-size go to (or come from) the host through OpenSSH's ssh (a second
// session next to ssh2's), which trusts exactly the host key ssh2 verified and never prompts; the
// small paths stay on ssh2. When ssh cannot get in (or is not installed) the copy still succeeds on
// ssh2 and says why. A pinned key that is not the host's makes the real ssh refuse the host.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { startNixLab, type NixLab } from "../lab/nix.ts";
import { startSshd, type SshdLab } from "../lab/sshd.ts";
import { openSshArgv, pinnedKnownHosts } from "../../src/remote/openssh.ts";
import { buildMany, nshCopy } from "./helpers.ts";

let lab: NixLab;
let sshd: SshdLab;
beforeAll(async () => {
  lab = await startNixLab({ name: "ossh" });
  sshd = await startSshd(lab);
});
afterAll(async () => {
  await lab?.cleanup();
});

const copyArgs = (root: string, top: string, extra: string[] = []) => [...extra, "--json", "--to", sshd.alias, "--ssh-config", sshd.configFile, "--remote-store", `local?root=${root}`, top];

/** Where each path went, from the `path-start` events of --json. */
function destinations(stdout: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of stdout.split("\n")) {
    if (!line.trim()) continue;
    const e = JSON.parse(line) as { event?: string; path?: string; to?: string };
    if (e.event === "path-start") out.set(String(e.path), String(e.to));
  }
  return out;
}

test("a big NAR goes through OpenSSH, the small ones through ssh2; the remote store verifies", async () => {
  const top = await buildMany(lab, 3, 80);
  const root = path.join(lab.root, "r-both");
  const r = await nshCopy(lab, copyArgs(root, top, ["--openssh-min-size", "64M"]));
  expect(r.code).toBe(0);
  const dest = destinations(r.stdout);
  const big = [...dest.keys()].find((p) => p.includes("-big-"))!;
  expect(dest.get(big)).toContain("(OpenSSH)");
  const small = [...dest.entries()].filter(([p]) => p !== big);
  expect(small.length).toBe(4);
  for (const [, to] of small) expect(to).not.toContain("(OpenSSH)");
  const closure = (await lab.run(["nix-store", "-qR", top])).stdout.trim().split("\n");
  expect((await lab.run(["nix-store", "--store", `local?root=${root}`, "--check-validity", ...closure])).code).toBe(0);
  expect((await lab.run(["nix-store", "--store", `local?root=${root}`, "-q", "--hash", big])).stdout).toBe((await lab.run(["nix-store", "-q", "--hash", big])).stdout);
}, 120000);

test("from the host: the big NAR comes through OpenSSH into the local store, byte for byte", async () => {
  const root = path.join(lab.root, "r-from");
  const remote = `local?root=${root}`;
  const b = await lab.run(["nix-build", "--store", remote, lab.expr("many"), "--argstr", "salt", `from${Date.now()}`, "--arg", "n", "2", "--arg", "bigMiB", "70", "--no-out-link"], { timeoutMs: 120000 });
  expect(b.code).toBe(0);
  const top = b.stdout.trim();
  expect((await lab.run(["nix-store", "--check-validity", top])).code).not.toBe(0);
  const r = await nshCopy(lab, ["--json", "--from", sshd.alias, "--ssh-config", sshd.configFile, "--remote-store", remote, top]);
  expect(r.code).toBe(0);
  const from = new Map<string, string>();
  for (const line of r.stdout.split("\n").filter((l) => l.trim())) {
    const e = JSON.parse(line) as { event?: string; path?: string; from?: string };
    if (e.event === "path-start") from.set(String(e.path), String(e.from));
  }
  const big = [...from.keys()].find((p) => p.includes("-big-"))!;
  expect(from.get(big)).toContain("(OpenSSH)");
  expect([...from.values()].filter((f) => f.includes("(OpenSSH)")).length).toBe(1);
  expect((await lab.run(["nix-store", "-q", "--hash", big])).stdout).toBe((await lab.run(["nix-store", "--store", remote, "-q", "--hash", big])).stdout);
  expect((await lab.run(["nix-store", "--verify-path", big])).code).toBe(0);
}, 120000);

test("openssh-min-size = 0 in nsh.conf keeps every NAR on ssh2", async () => {
  const top = await buildMany(lab, 1, 70);
  const conf = path.join(lab.root, "no-openssh.conf");
  fs.writeFileSync(conf, "openssh-min-size = 0\n");
  const r = await nshCopy(lab, copyArgs(path.join(lab.root, "r-conf0"), top), { NSH_CONF: conf });
  expect(r.code).toBe(0);
  const dest = destinations(r.stdout);
  expect(dest.size).toBe(3);
  for (const to of dest.values()) expect(to).not.toContain("(OpenSSH)");
}, 120000);

test("ssh that cannot log in: the copy stays on ssh2 and says why", async () => {
  const top = await buildMany(lab, 1, 70);
  const bin = path.join(lab.root, "fake-ssh-bin");
  fs.mkdirSync(bin, { recursive: true });
  fs.writeFileSync(path.join(bin, "ssh"), "#!/bin/sh\necho 'Permission denied (publickey).' >&2\nexit 255\n", { mode: 0o755 });
  const root = path.join(lab.root, "r-fallback");
  const r = await nshCopy(lab, copyArgs(root, top), { PATH: `${bin}:${lab.env.PATH}` });
  expect(r.code).toBe(0);
  expect(r.stderr).toContain("bulk transfers stay on ssh2");
  expect(r.stderr).toContain("Permission denied (publickey)");
  for (const to of destinations(r.stdout).values()) expect(to).not.toContain("(OpenSSH)");
  expect((await lab.run(["nix-store", "--store", `local?root=${root}`, "--check-validity", top])).code).toBe(0);
}, 120000);

test("the real ssh with nsh's options refuses a host whose key is not the pinned one", async () => {
  const dir = fs.mkdtempSync(path.join(lab.root, "pin-"));
  const target = (knownHostsFile: string) => ({ alias: sshd.alias, configFile: sshd.configFile, knownHostsFile, host: { user: "root", port: sshd.port, connectTimeoutMs: 5000, keepaliveIntervalMs: 15000, keepaliveCountMax: 3 } });
  const run = async (keyLine: string) => {
    const file = path.join(dir, `kh-${Math.random().toString(36).slice(2)}`);
    const [type, b64] = keyLine.split(" ");
    fs.writeFileSync(file, pinnedKnownHosts(type!, Buffer.from(b64!, "base64")));
    const p = Bun.spawn(openSshArgv(target(file), "echo reached"), { env: lab.env, stdio: ["ignore", "pipe", "pipe"] });
    return { code: await p.exited, out: await new Response(p.stdout).text(), err: await new Response(p.stderr).text() };
  };
  const good = await run(sshd.hostPublicKey);
  expect(good.err).not.toContain("Host key verification failed");
  expect(good.code).toBe(0);
  expect(good.out.trim()).toBe("reached");
  // Another ed25519 key, pinned instead of the host's.
  const other = path.join(dir, "other");
  expect((await lab.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other])).code).toBe(0);
  const bad = await run(fs.readFileSync(`${other}.pub`, "utf8").trim().split(/\s+/).slice(0, 2).join(" "));
  expect(bad.code).toBe(255);
  expect(bad.err).toContain("Host key verification failed");
}, 60000);
