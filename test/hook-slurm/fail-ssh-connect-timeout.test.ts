// Expected: nsh.conf's ssh-connect-timeout bounds the build hook's ssh connections. When the login
// host accepts TCP connections but never speaks SSH, the build fails after about that many seconds
// (not nsh's default), with a message naming the host and the connect timeout; no job is
// submitted.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { confWith, hasStackTrace, jobsOf, salt } from "./helpers.ts";

let lab: ClusterLab;
let silent: net.Server;
const held: net.Socket[] = [];
beforeAll(async () => {
  lab = await startClusterLab("connect-timeout");
  // Accepts, then says nothing: an SSH client waits for the server's banner forever.
  silent = net.createServer((sock) => void held.push(sock.on("error", () => {}))).listen(0, "127.0.0.1");
  await new Promise((r) => silent.once("listening", r));
}, 120000);
afterAll(async () => {
  for (const s of held) s.destroy();
  silent?.close();
  await lab?.cleanup();
});

test("a login host that never speaks SSH: the build gives up after ssh-connect-timeout, naming it", async () => {
  const port = (silent.address() as net.AddressInfo).port;
  const config = path.join(lab.nix.root, "silent.ssh_config");
  fs.writeFileSync(config, `Host silent-login\n  HostName 127.0.0.1\n  Port ${port}\n  User root\n\n${fs.readFileSync(lab.sshConfig, "utf8")}`);
  const s = salt();
  confWith(lab, { "ssh-config": config, "login-host": "silent-login", "ssh-connect-timeout": "2" });
  try {
    const t0 = performance.now();
    const r = await lab.nixBuild([lab.nix.expr("slurm-job"), "--argstr", "salt", s], 90000);
    const seconds = (performance.now() - t0) / 1000;
    console.log(`silent login host: nix-build failed after ${seconds.toFixed(1)} s`);
    if (r.code === 0 || !r.stderr.includes("ssh-connect-timeout")) console.log(r.stderr);
    expect(r.timedOut).toBe(false);
    expect(r.code).not.toBe(0);
    // It ends (a generous bound for a loaded machine), and the limit it names is the setting's
    // 2 s, not nsh's default of 20 s.
    expect(seconds).toBeLessThan(60);
    expect(r.stderr).toContain(`no SSH handshake with 127.0.0.1:${port} within 2 s`);
    expect(r.stderr).toContain("nsh.conf ssh-connect-timeout");
    expect(r.stderr).toContain("silent-login");
    expect(hasStackTrace(r.stderr)).toBe(false);
    expect(jobsOf(lab, s).every((j) => j.jobId === undefined)).toBe(true);
  } finally {
    lab.writeConf();
  }
}, 150000);
