// The OpenSSH command line nsh builds for bulk transfers (pure), its pinned known_hosts line, and
// sendfile into a pipe: a child reading the pipe gets exactly the file's bytes (through a buffer where
// the file's filesystem cannot do sendfile), and a NAR dumped
// through a sink that takes files this way is byte-identical to one dumped in chunks.
import { describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { dumpNar } from "../../src/nix/nar-dump.ts";
import type { NarOutput } from "../../src/nix/nar.ts";
import { spawnPipeDuplex } from "../../src/remote/local-process.ts";
import { HOST_KEY_ALIAS, openSshArgv, pinnedKnownHosts } from "../../src/remote/openssh.ts";

const host = { user: "alice", port: 2222, connectTimeoutMs: 20000, keepaliveIntervalMs: 15000, keepaliveCountMax: 3 };

describe("openSshArgv", () => {
  const argv = openSshArgv({ alias: "cluster", host, configFile: "/etc/nsh/ssh_config", knownHostsFile: "/tmp/x/known_hosts" }, "nix-store --serve --write");
  const opt = (k: string) => argv.find((a) => a.startsWith(`${k}=`))?.slice(k.length + 1);
  test.each([
    ["BatchMode", "yes"],
    ["StrictHostKeyChecking", "yes"],
    ["UserKnownHostsFile", "/tmp/x/known_hosts"],
    ["GlobalKnownHostsFile", "/dev/null"],
    ["HostKeyAlias", HOST_KEY_ALIAS],
    ["CheckHostIP", "no"],
    ["ControlPath", "none"],
    ["ConnectTimeout", "20"],
    ["ServerAliveInterval", "15"],
    ["ServerAliveCountMax", "3"],
  ])("%s=%s", (k, v) => expect(opt(k)).toBe(v));
  test("AES-GCM first, then chacha20", () => expect(opt("Ciphers")!.split(",").slice(0, 3)).toEqual(["aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com"]));
  test("config file, user, port, then the alias and the command last", () => {
    expect(argv.slice(0, 3)).toEqual(["ssh", "-F", "/etc/nsh/ssh_config"]);
    expect(argv.slice(-7)).toEqual(["-l", "alice", "-p", "2222", "--", "cluster", "nix-store --serve --write"]);
  });
  test("no -F without a config file", () => expect(openSshArgv({ alias: "h", host, knownHostsFile: "k" }, "c")).not.toContain("-F"));
});

test("pinnedKnownHosts: one line under the alias", () => {
  expect(pinnedKnownHosts("ssh-ed25519", Buffer.from([1, 2, 3]))).toBe(`${HOST_KEY_ALIAS} ssh-ed25519 AQID\n`);
});

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "nsh-ossh-unit-"));

test("sendfile into a child's stdin pipe: the child gets exactly the file, then our own bytes", async () => {
  const dir = tmp();
  const file = path.join(dir, "data");
  const data = Buffer.alloc(9 << 20);
  for (let i = 0; i < data.length; i += 4096) data.writeUInt32LE((i * 2654435761) >>> 0, i);
  fs.writeFileSync(file, data);
  const out = path.join(dir, "out");
  // `sh -c 'cat > out'` stands in for ssh: the bulk session is this Duplex around `ssh`.
  const d = spawnPipeDuplex(["sh", "-c", `cat > ${out}`], { describe: "cat" });
  const fd = fs.openSync(file, "r");
  let counted = 0;
  await d.writeFromFile!(fd, 1000, data.length - 1000, (n) => (counted += n));
  fs.closeSync(fd);
  await d.write(Buffer.from("tail"));
  await d.end();
  expect((await d.exited).code).toBe(0);
  expect(counted).toBe(data.length - 1000);
  expect(Buffer.compare(fs.readFileSync(out), Buffer.concat([data.subarray(1000), Buffer.from("tail")]))).toBe(0);
  fs.rmSync(dir, { recursive: true, force: true });
});

test("a file sendfile cannot read from (procfs): the same bytes arrive through a buffer", async () => {
  const dir = tmp();
  const out = path.join(dir, "out");
  const source = "/proc/self/environ"; // sendfile answers EINVAL for it (seen on Linux 6.18)
  const want = fs.readFileSync(source);
  const d = spawnPipeDuplex(["sh", "-c", `cat > ${out}`], { describe: "cat" });
  const fd = fs.openSync(source, "r");
  let counted = 0;
  await d.writeFromFile!(fd, 3, want.length - 3, (n) => (counted += n));
  fs.closeSync(fd);
  await d.end();
  expect((await d.exited).code).toBe(0);
  expect(counted).toBe(want.length - 3);
  expect(Buffer.compare(fs.readFileSync(out), want.subarray(3))).toBe(0);
  fs.rmSync(dir, { recursive: true, force: true });
});

test("a child that exits early: writing fails with a message naming it, no hang", async () => {
  const d = spawnPipeDuplex(["sh", "-c", "exit 3"], { describe: "quitter" });
  await d.exited;
  await expect(d.write(Buffer.alloc(4 << 20))).rejects.toThrow(/quitter stopped reading/);
});

test("dumpNar through a sink that takes files: byte-identical to the chunked NAR", async () => {
  const dir = tmp();
  const root = path.join(dir, "tree");
  fs.mkdirSync(path.join(root, "sub"), { recursive: true });
  fs.writeFileSync(path.join(root, "big"), Buffer.alloc(3 << 20, 7));
  fs.writeFileSync(path.join(root, "sub", "small"), "hello");
  fs.symlinkSync("big", path.join(root, "link"));
  const chunks: Uint8Array[] = [];
  const plain = await dumpNar(root, async (c) => void chunks.push(Buffer.from(c)));
  const viaFiles: Uint8Array[] = [];
  let filesUsed = 0;
  const out: NarOutput = async (c) => void viaFiles.push(Buffer.from(c));
  out.fromFile = async (fd, offset, length) => {
    filesUsed++;
    const b = Buffer.alloc(length);
    fs.readSync(fd, b, 0, length, offset);
    viaFiles.push(b);
  };
  const got = await dumpNar(root, out);
  expect(filesUsed).toBe(1);
  expect(got.narSize).toBe(plain.narSize);
  expect(Buffer.compare(Buffer.concat(viaFiles), Buffer.concat(chunks))).toBe(0);
  fs.rmSync(dir, { recursive: true, force: true });
});
