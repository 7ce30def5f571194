// SshPool against real OpenSSH servers (two private sshds from the lab, a closed port, a silent
// port): exec, streaming, failover, host key and authentication failures, dropped connections.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { fingerprintSha256, parsePublicKey } from "../../src/remote/known-hosts.ts";
import { shellQuote, SshError, SshPool, type SshPoolOptions } from "../../src/remote/ssh.ts";
import { remoteCommand } from "../../src/remote/open-store.ts";
import { type SshdLab, startSshd } from "../lab/sshd.ts";

type Reader = { read(): Promise<{ done: boolean; value?: Uint8Array }> };

let a: SshdLab;
let b: SshdLab;
let tmp: string;
let configFile: string;
let closedPort: number;
let silent: net.Server;
let agent: Bun.Subprocess | undefined;
let agentSock: string;
const pools: SshPool[] = [];

const pool = (o: SshPoolOptions = {}) => {
  const p = new SshPool({ configFile, agentSocket: null, ...o });
  pools.push(p);
  return p;
};
const fp = (pub: string) => fingerprintSha256(parsePublicKey(pub).keyBlob);
const keygen = (file: string, pass = "") => {
  const r = Bun.spawnSync(["ssh-keygen", "-q", "-t", "ed25519", "-N", pass, "-C", path.basename(file), "-f", file]);
  if (r.exitCode !== 0) throw new Error(`ssh-keygen ${file}: ${r.stderr}`);
};
const freePort = () =>
  new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });

/** All descendants of pid (sshd sessions and the commands under them), from /proc. */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
    } catch {} // exited meanwhile
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}
const signalSessions = (sshd: SshdLab, sig: NodeJS.Signals) => {
  const pids = descendants(sshd.pid);
  for (const p of pids) {
    try {
      process.kill(p, sig);
    } catch {}
  }
  return pids;
};
const accepted = (sshd: SshdLab) => (fs.readFileSync(sshd.logFile, "utf8").match(/Accepted publickey/g) ?? []).length;

/** Awaits p, failing the test if it takes longer than ms (a hang must not look like a pass). */
async function within<T>(ms: number, p: Promise<T>): Promise<T> {
  let timer: Timer | undefined;
  const t = new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`still pending after ${ms} ms`)), ms)));
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}
const errorOf = async (p: Promise<unknown>): Promise<Error> => {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected a rejection");
};

beforeAll(async () => {
  a = await startSshd();
  b = await startSshd(undefined, { alias: "nshlab2" });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-ssh-test-"));
  closedPort = await freePort();
  // A port that accepts TCP and never speaks SSH: only the handshake timeout can end the wait.
  silent = net.createServer(() => {}).listen(0, "127.0.0.1");
  await new Promise((r) => silent.once("listening", r));
  keygen(path.join(tmp, "wrong_key"));
  keygen(path.join(tmp, "encrypted_key"), "secret passphrase");
  fs.writeFileSync(path.join(tmp, "kh-wrong"), `[127.0.0.1]:${a.port} ${b.hostPublicKey}\n`);
  fs.writeFileSync(path.join(tmp, "kh-empty"), "");
  // Identities known only by their .pub file, their private halves held by the agent.
  fs.copyFileSync(`${a.identityFile}.pub`, path.join(tmp, "pub_only_a.pub"));
  fs.copyFileSync(path.join(tmp, "wrong_key.pub"), path.join(tmp, "pub_only_wrong.pub"));
  agentSock = path.join(tmp, "agent.sock");
  agent = Bun.spawn(["ssh-agent", "-D", "-a", agentSock], { stdout: "ignore", stderr: "ignore" });
  for (let i = 0; i < 50 && !fs.existsSync(agentSock); i++) await Bun.sleep(50);
  const toA = [`  HostName 127.0.0.1`, `  Port ${a.port}`, "  User root", "  GlobalKnownHostsFile /dev/null"];
  configFile = path.join(tmp, "ssh_config");
  fs.writeFileSync(
    configFile,
    [
      "Host mism",
      ...toA,
      `  IdentityFile ${a.identityFile}`,
      `  UserKnownHostsFile ${tmp}/kh-wrong`,
      "Host unk unk-no unk-new",
      ...toA,
      `  IdentityFile ${a.identityFile}`,
      "Host unk",
      `  UserKnownHostsFile ${tmp}/kh-empty`,
      "Host unk-no",
      `  UserKnownHostsFile ${tmp}/kh-empty`,
      "  StrictHostKeyChecking no",
      "Host unk-new",
      `  UserKnownHostsFile ${tmp}/kh-new`,
      "  StrictHostKeyChecking accept-new",
      "Host badauth agentonly ka idonly-a idonly-wrong",
      ...toA,
      `  UserKnownHostsFile ${a.knownHosts}`,
      "  HostKeyAlias nshlab",
      "Host badauth",
      `  IdentityFile ${tmp}/wrong_key`,
      `  IdentityFile ${tmp}/encrypted_key`,
      `  IdentityFile ${tmp}/missing_key`,
      "Host agentonly",
      `  IdentityFile ${tmp}/missing_key`,
      "Host idonly-a idonly-wrong",
      "  IdentitiesOnly yes",
      "Host idonly-a",
      `  IdentityFile ${tmp}/pub_only_a`,
      "Host idonly-wrong",
      `  IdentityFile ${tmp}/pub_only_wrong`,
      "Host ka",
      `  IdentityFile ${a.identityFile}`,
      "  ServerAliveInterval 1",
      "  ServerAliveCountMax 2",
      "Host down",
      "  HostName 127.0.0.1",
      `  Port ${closedPort}`,
      "Host silent",
      "  HostName 127.0.0.1",
      `  Port ${(silent.address() as net.AddressInfo).port}`,
      "  ConnectTimeout 1",
      "Host *", // an Include under "Host silent" would apply to that host only
      `Include ${a.configFile}`,
      `Include ${b.configFile}`,
      "",
    ].join("\n"),
  );
}, 60_000);

afterEach(() => {
  for (const p of pools.splice(0)) p.close();
});

afterAll(async () => {
  agent?.kill("SIGKILL");
  silent?.close();
  await Promise.all([a?.stop(), b?.stop()]);
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
}, 30_000);

describe("remoteCommand", () => {
  test("quotes what the shell would split or expand", () => {
    expect(remoteCommand({ nixBinDir: "/opt/nix/bin/", program: "nix-store", args: ["--serve", "--write"], store: "local?root=/x y" })).toBe(
      "/opt/nix/bin/nix-store --serve --write --store 'local?root=/x y'",
    );
    expect(remoteCommand({ program: "nix-daemon", args: ["--stdio"] })).toBe("nix-daemon --stdio");
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
  });
});

describe("exec", () => {
  test("echo, exit codes and signals", async () => {
    const p = pool();
    expect(await p.runCommand(a.alias, "echo hi")).toEqual({ code: 0, signal: undefined, stdout: "hi\n", stderr: "" });
    expect(await p.runCommand(a.alias, "echo oops >&2; exit 7")).toMatchObject({ code: 7, stderr: "oops\n" });
    expect(await p.runCommand(a.alias, "kill -9 $$")).toMatchObject({ code: null, signal: "SIGKILL" });
    const d = await p.exec([a.alias], "echo line1 >&2; echo line2 >&2");
    const lines: string[] = [];
    d.onStderrLine = (l) => lines.push(l);
    expect(await d.exited).toEqual({ code: 0 });
    expect(d.describe).toBe(`nshlab (root@127.0.0.1:${a.port}): echo line1 >&2; echo line2 >&2`);
    await Bun.sleep(50);
    expect(d.stderrTail()).toBe("line1\nline2\n");
  });

  test("64 MiB round trip through cat: same sha256, bounded memory", async () => {
    const d = await pool().exec([a.alias], "cat");
    const total = 64 << 20;
    const chunk = 1 << 20;
    const sent = createHash("sha256");
    const got = createHash("sha256");
    let written = 0;
    let n = 0;
    let inFlight = 0;
    // Collect garbage while sampling: without it Bun's RSS holds ~100 MiB of dead ciphertext
    // buffers here, which says nothing about how much the transfer keeps alive.
    Bun.gc(true);
    const rss0 = process.memoryUsage().rss;
    let peak = rss0;
    const sampler = setInterval(() => {
      Bun.gc(true);
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 25);
    const writer = (async () => {
      for (let i = 0; i < total / chunk; i++) {
        const buf = new Uint8Array(chunk);
        for (let j = 0; j < chunk; j += 4096) buf[j] = (i * 31 + j) & 0xff;
        buf[chunk - 1] = i & 0xff;
        sent.update(buf);
        await d.write(buf);
        written += chunk;
        inFlight = Math.max(inFlight, written - n);
      }
      await d.end();
    })();
    for (;;) {
      const r = await (d.stdout as Reader).read();
      if (r.done || !r.value) break;
      got.update(r.value);
      n += r.value.length;
    }
    await writer;
    clearInterval(sampler);
    expect(n).toBe(total);
    expect(got.digest("hex")).toBe(sent.digest("hex"));
    expect(await d.exited).toEqual({ code: 0 });
    // Backpressure: write() waits, so only a few SSH windows (2 MiB each) are ever in flight.
    expect(inFlight).toBeLessThan(16 << 20);
    expect(peak - rss0).toBeLessThan(48 << 20);
  }, 60_000);

  test("one connection serves 10 sequential channels", async () => {
    const p = pool();
    const before = accepted(a);
    for (let i = 0; i < 10; i++) expect((await p.runCommand(a.alias, `echo ${i}`)).stdout).toBe(`${i}\n`);
    expect(p.connectionsOpened).toBe(1);
    await Bun.sleep(100); // sshd writes its log asynchronously
    expect(accepted(a) - before).toBe(1);
  });

  test("concurrent channels beyond MaxSessions open another connection", async () => {
    const p = pool({ maxChannelsPerConnection: 4 });
    const rs = await Promise.all(Array.from({ length: 10 }, (_, i) => p.runCommand(a.alias, `sleep 0.3; echo ${i}`)));
    expect(rs.map((r) => r.stdout)).toEqual(Array.from({ length: 10 }, (_, i) => `${i}\n`));
    expect(p.connectionsOpened).toBe(3);
  });

  test("a missing nix-store names the host and remote-nix-bin-dir", async () => {
    const cmd = remoteCommand({ nixBinDir: "/nonexistent/bin", program: "nix-store", args: ["--serve", "--write"] });
    const e = await errorOf(pool().runCommand(a.alias, cmd));
    expect(e).toBeInstanceOf(SshError);
    expect(e.message).toMatch(/^nix-store not found on nshlab \(root@127\.0\.0\.1:\d+\): set remote-nix-bin-dir/);
    // through a Duplex read as well, as the serve protocol client sees it
    const d = await pool().exec([a.alias], cmd);
    expect((await errorOf((d.stdout as Reader).read())).message).toMatch(/nix-store not found on nshlab.*remote-nix-bin-dir/);
  });
});

describe("host keys", () => {
  const aFp = () => fp(a.hostPublicKey);
  test("a mismatch is refused with the presented fingerprint and the file:line expected", async () => {
    const e = await errorOf(pool().exec(["mism"], "true"));
    expect(e.message).toContain("HOST KEY MISMATCH");
    expect(e.message).toContain(`presented ED25519 key ${aFp()}`);
    expect(e.message).toContain(`${tmp}/kh-wrong:1 expects ED25519 key ${fp(b.hostPublicKey)}`);
  });
  test("an unknown host is refused, with how to trust it", async () => {
    const e = await errorOf(pool().exec(["unk"], "true"));
    expect(e.message).toContain(`[127.0.0.1]:${a.port} is not known`);
    expect(e.message).toContain(aFp());
    expect(e.message).toContain("nsh.conf `trusted`");
  });
  test("a pinned key is accepted; a different pin is a mismatch", async () => {
    expect((await pool({ trusted: { unk: [a.hostPublicKey] } }).runCommand("unk", "echo ok")).stdout).toBe("ok\n");
    const e = await errorOf(pool({ trusted: { unk: [b.hostPublicKey] } }).exec(["unk"], "true"));
    expect(e.message).toContain(`presented ED25519 key ${aFp()}, but nsh.conf \`trusted\` pins`);
  });
  test("StrictHostKeyChecking no accepts an unknown host with a warning", async () => {
    const warnings: string[] = [];
    expect((await pool({ warn: (m) => warnings.push(m) }).runCommand("unk-no", "echo ok")).code).toBe(0);
    expect(warnings.join("\n")).toContain(`accepting the unknown host key ED25519 key ${aFp()}`);
  });
  test("StrictHostKeyChecking accept-new records the key, then verifies it", async () => {
    const warnings: string[] = [];
    expect((await pool({ warn: (m) => warnings.push(m) }).runCommand("unk-new", "true")).code).toBe(0);
    expect(fs.readFileSync(`${tmp}/kh-new`, "utf8")).toBe(`[127.0.0.1]:${a.port} ${a.hostPublicKey}\n`);
    expect(warnings[0]).toContain(`added the unknown host key`);
    expect((await pool({ warn: (m) => warnings.push(m) }).runCommand("unk-new", "true")).code).toBe(0);
    expect(warnings.length).toBe(1);
  });
});

describe("failover and failures", () => {
  test("the first host down: the second is used", async () => {
    const d = await pool().exec(["down", a.alias], "echo hi");
    expect(d.host).toBe(`nshlab (root@127.0.0.1:${a.port})`);
    expect(await d.exited).toEqual({ code: 0 });
  });
  test("comma lists and a second server", async () => {
    const d = await pool().exec(["down,nshlab2"], "true");
    expect(d.host).toContain(`127.0.0.1:${b.port}`);
  });
  test("when every host fails, the error names each one and why", async () => {
    const e = await errorOf(pool().exec(["down", "mism", "no-such-host.invalid", "silent"], "nix-store --serve"));
    expect(e).toBeInstanceOf(SshError);
    expect((e as SshError).failures.length).toBe(4);
    const lines = e.message.split("\n");
    expect(lines[0]).toBe("cannot run `nix-store --serve` on any of 4 ssh hosts (each was tried in order):");
    expect(lines[1]).toMatch(new RegExp(`^  - down \\(.*127\\.0\\.0\\.1:${closedPort}\\): connection refused`));
    expect(lines[2]).toMatch(/^ {2}- mism \(.*\): HOST KEY MISMATCH/);
    expect(lines[3]).toMatch(/^ {2}- .*no-such-host\.invalid.*: cannot resolve host name no-such-host\.invalid/);
    expect(lines[4]).toMatch(/^ {2}- silent \(.*\): no SSH handshake .* within 1 s/);
  }, 20_000);
  test("authentication failure names the keys tried and the keys skipped", async () => {
    const e = await errorOf(pool().exec(["badauth"], "true"));
    const wrong = fp(fs.readFileSync(`${tmp}/wrong_key.pub`, "utf8"));
    expect(e.message).toContain("authentication failed for user root: tried");
    expect(e.message).toContain(`${tmp}/wrong_key (ED25519 ${wrong})`);
    expect(e.message).toContain(`${tmp}/encrypted_key is encrypted`);
    expect(e.message).toContain(`not found: ${tmp}/missing_key`);
  });
  test("ssh-agent keys authenticate, and are listed when they fail", async () => {
    const env = { ...process.env, SSH_AUTH_SOCK: agentSock };
    expect(Bun.spawnSync(["ssh-add", "-q", `${tmp}/wrong_key`], { env }).exitCode).toBe(0);
    const e = await errorOf(pool({ agentSocket: agentSock }).exec(["agentonly"], "true"));
    expect(e.message).toContain(`agent key ED25519 ${fp(fs.readFileSync(`${tmp}/wrong_key.pub`, "utf8"))} (wrong_key)`);
    expect(Bun.spawnSync(["ssh-add", "-q", a.identityFile], { env }).exitCode).toBe(0);
    expect((await pool({ agentSocket: agentSock }).runCommand("agentonly", "echo via-agent")).stdout).toBe("via-agent\n");
  });

  test("IdentitiesOnly: the agent offers only configured identities (matched by their .pub)", async () => {
    const env = { ...process.env, SSH_AUTH_SOCK: agentSock };
    expect(Bun.spawnSync(["ssh-add", "-q", `${tmp}/wrong_key`, a.identityFile], { env }).exitCode).toBe(0);
    expect((await pool({ agentSocket: agentSock }).runCommand("idonly-a", "echo ok")).stdout).toBe("ok\n");
    const e = await errorOf(pool({ agentSocket: agentSock }).exec(["idonly-wrong"], "true"));
    expect(e.message).toContain("(wrong_key)");
    expect(e.message).not.toContain(fp(fs.readFileSync(`${a.identityFile}.pub`, "utf8")));
  });
});

describe("dropped connections", () => {
  test("killing the session mid-transfer fails the read with the host's name, quickly", async () => {
    const p = pool();
    const d = await p.exec([a.alias], "cat");
    const writer = (async () => {
      for (;;) await d.write(new Uint8Array(256 << 10));
    })();
    writer.catch(() => {});
    let n = 0;
    while (n < 4 << 20) n += (await (d.stdout as Reader).read()).value?.length ?? 0;
    const t0 = Date.now();
    expect(signalSessions(a, "SIGKILL").length).toBeGreaterThan(0);
    const e = await within(5000, (async () => {
      for (;;) if ((await (d.stdout as Reader).read()).done) throw new Error("clean EOF after a dropped connection");
    })().catch((err: Error) => err));
    expect(e.message).toMatch(new RegExp(`ssh connection to nshlab \\(root@127\\.0\\.0\\.1:${a.port}\\) lost`));
    expect(Date.now() - t0).toBeLessThan(5000);
    expect((await within(2000, errorOf(writer))).message).toContain("lost");
    expect((await errorOf(d.exited)).message).toContain("lost");
    // the pool reconnects for the next command
    expect((await p.runCommand(a.alias, "echo again")).stdout).toBe("again\n");
    expect(p.connectionsOpened).toBe(2);
  }, 20_000);

  test("a silent peer is detected by keepalives (ServerAliveInterval)", async () => {
    const d = await pool().exec(["ka"], "cat");
    await d.write(new Uint8Array([1, 2, 3]));
    expect((await (d.stdout as Reader).read()).value?.length).toBe(3);
    const stopped = signalSessions(a, "SIGSTOP");
    try {
      const e = await within(8000, errorOf((d.stdout as Reader).read()));
      expect(e.message).toMatch(/ssh connection to ka \(root@127\.0\.0\.1:\d+\) lost: Keepalive timeout/);
    } finally {
      for (const pid of stopped) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {}
      }
    }
  }, 20_000);
});
