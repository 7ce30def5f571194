// Self-test of the test lab: private Nix instances, daemon, cleanup, sshd and
// Nix's own build-remote over that sshd.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { startNixLab, type NixLab } from "../lab/nix.ts";
import { findByMarker, isAlive, runCommand, waitUntil } from "../lab/proc.ts";
import { builderUri, buildersLine, startSshd, type SshdLab } from "../lab/sshd.ts";

const salt = (): string => `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
const labs: NixLab[] = [];

async function newLab(opts: Parameters<typeof startNixLab>[0]): Promise<NixLab> {
  const lab = await startNixLab(opts);
  labs.push(lab);
  return lab;
}

afterAll(async () => {
  for (const lab of labs) await lab.cleanup();
});

const show = (r: { code: number | null; stdout: string; stderr: string }): string =>
  `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

describe("nix lab", () => {
  let a: NixLab;
  beforeAll(async () => {
    a = await newLab({ daemon: true, name: "selfA" });
  });

  test("layout and environment", () => {
    expect(a.storeDir.startsWith(a.root)).toBe(true);
    expect(a.socket.length).toBeLessThan(100);
    expect(a.env.NIX_REMOTE).toBeUndefined();
    expect(a.env.NIX_STORE_DIR).toBe(a.storeDir);
    expect(fs.existsSync(path.join(a.stateDir, "daemon-socket"))).toBe(true);
    expect(a.daemonPid).toBeGreaterThan(0);
    expect(isAlive(a.daemonPid!)).toBe(true);
  });

  test("builds trivial.nix through the daemon", async () => {
    const s = salt();
    const r = await a.run(["nix-build", a.expr("trivial"), "--argstr", "salt", s, "--no-out-link", "--store", "daemon"]);
    expect(r.code, show(r)).toBe(0);
    const out = r.stdout.trim();
    expect(out.startsWith(`${a.storeDir}/`)).toBe(true);
    expect(fs.readFileSync(out, "utf8")).toBe(`hi ${s}\n`);
    expect(fs.readFileSync(a.daemonLog, "utf8")).toContain("accepted connection");
  });

  test("evaluates ifd-sleep.nix through the daemon", async () => {
    const s = salt();
    const r = await a.run([
      "nix", "eval", "--store", "daemon", "-f", a.expr("ifd-sleep"),
      "--argstr", "salt", s, "--argstr", "sleep", "1", "--raw", "value",
    ]);
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toBe(`ifd-${s}`);
    expect(r.durationMs).toBeGreaterThanOrEqual(1000);
  });

  test("run() kills the whole process group on timeout", async () => {
    const r = await a.run(["sh", "-c", "sleep 30 & echo started; sleep 30"], { timeoutMs: 500 });
    expect(r.timedOut).toBe(true);
    expect(r.signal).toBe("SIGKILL");
    expect(r.stdout).toBe("started\n");
    expect(findByMarker(a.root).filter((pid) => fs.readFileSync(`/proc/${pid}/cmdline`, "latin1").startsWith("sleep"))).toEqual([]);
  });

  test("a daemon that cannot start gives an error with its log", async () => {
    const c = await newLab({ name: "selfC" });
    // a socket below a regular file: nix-daemon exits at once
    const bad = path.join(c.confDir, "nix.conf", "socket");
    await expect(c.startDaemon({ NIX_DAEMON_SOCKET_PATH: bad })).rejects.toThrow(/nix-daemon .* exited[\s\S]*log tail/);
    expect(c.daemonPid).toBeUndefined();
    await c.cleanup();
    expect(fs.existsSync(c.root)).toBe(false);
  });

  test("two labs side by side do not interfere; cleanup leaves nothing", async () => {
    const b = await newLab({ daemon: true, name: "selfB" });
    expect(b.root).not.toBe(a.root);
    expect(b.socket).not.toBe(a.socket);
    const s = salt();
    const build = (lab: NixLab) =>
      lab.run(["nix-build", lab.expr("trivial"), "--argstr", "salt", s, "--no-out-link", "--store", "daemon"]);
    const [ra, rb] = await Promise.all([build(a), build(b)]);
    expect(ra.code, show(ra)).toBe(0);
    expect(rb.code, show(rb)).toBe(0);
    const pa = ra.stdout.trim();
    const pb = rb.stdout.trim();
    expect(pa.startsWith(`${a.storeDir}/`)).toBe(true);
    expect(pb.startsWith(`${b.storeDir}/`)).toBe(true);
    expect(fs.existsSync(path.join(a.storeDir, path.basename(pb)))).toBe(false);

    // Leave a long IFD build running in b (daemon child + builder in their own
    // sessions), then clean up: nothing of b may survive, a must be intact.
    const long = b.run(
      ["nix", "eval", "--store", "daemon", "-f", b.expr("ifd-sleep"), "--argstr", "salt", salt(), "--argstr", "sleep", "60", "--raw", "value"],
      { timeoutMs: 90_000 },
    );
    const sawSleep = await waitUntil(
      () => findByMarker(b.root).some((pid) => fs.readFileSync(`/proc/${pid}/cmdline`, "latin1").startsWith("/bin/sleep")),
      15_000,
    );
    expect(sawSleep).toBe(true);
    const daemonPid = b.daemonPid!;
    await b.cleanup();
    const r = await long;
    expect(r.code).not.toBe(0);
    expect(isAlive(daemonPid)).toBe(false);
    expect(findByMarker(b.root)).toEqual([]);
    expect(fs.existsSync(b.root)).toBe(false);
    expect(isAlive(a.daemonPid!)).toBe(true);
    const again = await build(a);
    expect(again.code, show(again)).toBe(0);
  });
});

describe("sshd lab and build-remote", () => {
  let lab: NixLab;
  let sshd: SshdLab;
  beforeAll(async () => {
    lab = await newLab({ name: "ssh" });
    sshd = await startSshd(lab);
  });

  test("ssh -F config alias works; sessions get the lab's Nix configuration but, like a real sshd's, no store dir", async () => {
    const r = await lab.run(["ssh", "-F", sshd.configFile, sshd.alias, 'echo "$NIX_CONF_DIR|$NIX_STORE_DIR"'], { timeoutMs: 30_000 });
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout.trim()).toBe(`${lab.confDir}|`);
  });

  test("a wrong known_hosts is refused", async () => {
    const wrongKey = path.join(lab.root, "wrong_key");
    const kg = await runCommand(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", wrongKey], { env: lab.env });
    expect(kg.code, show(kg)).toBe(0);
    const wrongPub = fs.readFileSync(`${wrongKey}.pub`, "utf8").split(/\s+/).slice(0, 2).join(" ");
    const wrongKnown = path.join(lab.root, "wrong_known_hosts");
    fs.writeFileSync(wrongKnown, `${sshd.alias} ${wrongPub}\n`);
    const r = await lab.run(["ssh", "-F", sshd.configFile, "-o", `UserKnownHostsFile=${wrongKnown}`, sshd.alias, "true"], {
      timeoutMs: 30_000,
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED/);
  });

  test("Nix build-remote builds remote.nix on the sshd (single-user)", async () => {
    const s = salt();
    const r = await lab.run(
      ["nix-build", lab.expr("remote"), "--argstr", "salt", s, "--no-out-link", "--option", "max-jobs", "0", "--builders", buildersLine(sshd)],
      { env: { NIX_SSHOPTS: sshd.sshOpts }, timeoutMs: 60_000 },
    );
    expect(r.code, show(r)).toBe(0);
    const out = r.stdout.trim();
    expect(out.startsWith(`${lab.storeDir}/`)).toBe(true);
    expect(fs.readFileSync(out, "utf8")).toBe(`remote ${s}\n`);
    expect(r.stderr).toContain(`on '${builderUri(sshd)}'`);
    // built in the separate chroot store, then copied back
    expect(fs.existsSync(path.join(sshd.remoteRoot, "nix/store", path.basename(out)))).toBe(true);
  });

  test("Nix build-remote through the lab daemon (NIX_SSHOPTS in the daemon env)", async () => {
    await lab.startDaemon({ NIX_SSHOPTS: sshd.sshOpts });
    const s = salt();
    const r = await lab.run(
      [
        "nix-build", lab.expr("remote"), "--argstr", "salt", s, "--no-out-link", "--store", "daemon",
        "--option", "max-jobs", "0", "--builders", buildersLine(sshd, { protocol: "ssh-ng" }),
      ],
      { timeoutMs: 60_000 },
    );
    expect(r.code, show(r)).toBe(0);
    const out = r.stdout.trim();
    expect(fs.readFileSync(out, "utf8")).toBe(`remote ${s}\n`);
    expect(fs.existsSync(path.join(sshd.remoteRoot, "nix/store", path.basename(out)))).toBe(true);
  });

  test("sshd stop leaves no sshd process", async () => {
    const pid = sshd.pid;
    await sshd.stop();
    expect(isAlive(pid)).toBe(false);
    expect(findByMarker(sshd.dir)).toEqual([]);
  });
});
