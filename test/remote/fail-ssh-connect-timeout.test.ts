// Expected: nsh.conf's ssh-connect-timeout bounds `nsh copy`'s and `nsh doctor`'s ssh connections.
// To a host that accepts TCP connections but never speaks SSH, each gives up after about that many
// seconds and names the host and the connect timeout; a ConnectTimeout for the host in the ssh
// config takes precedence over the setting.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { startNixLab, type NixLab } from "../lab/nix.ts";
import { buildMany, NSH, nshCopy } from "./helpers.ts";

let lab: NixLab;
let silent: net.Server;
let config: string;
let port: number;
const held: net.Socket[] = [];
beforeAll(async () => {
  lab = await startNixLab({ name: "conntimeout" });
  silent = net.createServer((sock) => void held.push(sock.on("error", () => {}))).listen(0, "127.0.0.1");
  await new Promise((r) => silent.once("listening", r));
  port = (silent.address() as net.AddressInfo).port;
  config = path.join(lab.root, "silent.ssh_config");
  fs.writeFileSync(config, `Host silent\n  HostName 127.0.0.1\n  Port ${port}\n  User root\n\nHost slow-by-config\n  HostName 127.0.0.1\n  Port ${port}\n  ConnectTimeout 3\n`);
});
afterAll(async () => {
  for (const s of held) s.destroy();
  silent?.close();
  await lab?.cleanup();
});

function conf(extra: string): string {
  const file = path.join(lab.root, `nsh-${Math.random().toString(36).slice(2)}.conf`);
  fs.writeFileSync(file, `ssh-config = ${config}\nssh-connect-timeout = 1\n${extra}`);
  return file;
}

test("nsh copy to a host that never speaks SSH gives up after ssh-connect-timeout, naming it", async () => {
  const top = await buildMany(lab, 1, 0);
  const t0 = performance.now();
  const r = await nshCopy(lab, ["--to", "silent", top], { NSH_CONF: conf("") });
  const seconds = (performance.now() - t0) / 1000;
  console.log(`nsh copy to a silent host: failed after ${seconds.toFixed(1)} s`);
  expect(r.code).toBe(1);
  expect(seconds).toBeLessThan(60);
  expect(r.stderr).toContain(`silent (root@127.0.0.1:${port}): no SSH handshake with 127.0.0.1:${port} within 1 s`);
  expect(r.stderr).toContain("nsh.conf ssh-connect-timeout");
});

test("a ConnectTimeout in the ssh config for the host wins over ssh-connect-timeout", async () => {
  const top = await buildMany(lab, 1, 0);
  const r = await nshCopy(lab, ["--to", "slow-by-config", top], { NSH_CONF: conf("") });
  expect(r.code).toBe(1);
  expect(r.stderr).toContain(`within 3 s (the connect timeout: ConnectTimeout at ${config}:`);
});

test("nsh doctor: the ssh check gives up after ssh-connect-timeout, naming it", async () => {
  const p = Bun.spawn([NSH, "doctor"], { env: { ...lab.env, NSH_CONF: conf("login-host = silent\nslurm-state-dir = /tmp/unused\n") }, stdio: ["ignore", "pipe", "pipe"] });
  const [stdout, code] = await Promise.all([new Response(p.stdout).text(), p.exited]);
  expect(code).toBe(1);
  expect(stdout).toMatch(/FAIL {2}\S.*no SSH handshake with 127\.0\.0\.1:\d+ within 1 s \(the connect timeout: nsh\.conf ssh-connect-timeout/);
});
