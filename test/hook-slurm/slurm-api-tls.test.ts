// Expected: slurmrestd behind a TLS-terminating proxy (what a site puts there: nginx, stunnel; here
// a Bun TLS server with a certificate of a CA made for the test) is used over https:
//   - slurm-api-scheme = https with slurm-api-ca-file naming that CA: `nsh doctor` passes and a
//     build through the hook succeeds, its requests going through the proxy;
//   - nsh's reaper cancels over https too: SIGINT of nix-build while the job runs ends the job;
//   - without the CA file the server's certificate is refused: `nsh doctor` fails saying so (and
//     how to fix it), and no request (so no token) reaches the proxy;
//   - plain http to a host whose name is not loopback works but warns that the JWT goes in the
//     clear, naming the host, once per process (the hook says it to nix-build's user);
//   - an inline slurm-jwt-token in an nsh.conf that others may read draws a warning naming the file.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { NSH_BIN, startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { confWith, jobEnded, jobInState, jobsOf, salt } from "./helpers.ts";

let lab: ClusterLab;
let proxy: ReturnType<typeof Bun.serve>;
let caFile: string;
const seen: string[] = [];

function openssl(args: string[], cwd: string) {
  const r = Bun.spawnSync(["openssl", ...args], { cwd, stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`openssl ${args[0]}: ${r.stderr.toString()}`);
}

beforeAll(async () => {
  lab = await startClusterLab("tls");
  const dir = fs.mkdtempSync(path.join(lab.nix.root, "tls-"));
  openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=nsh test CA"], dir);
  openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=localhost"], dir);
  fs.writeFileSync(path.join(dir, "ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  openssl(["x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "srv.pem", "-days", "2", "-extfile", "ext.cnf"], dir);
  caFile = path.join(dir, "ca.pem");
  const upstream = `http://127.0.0.1:${lab.slurm.restPort}`;
  proxy = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    tls: { cert: fs.readFileSync(path.join(dir, "srv.pem"), "utf8"), key: fs.readFileSync(path.join(dir, "srv.key"), "utf8") },
    async fetch(req) {
      const url = new URL(req.url);
      seen.push(`${req.method} ${url.pathname}${req.headers.has("x-slurm-user-token") ? " (token)" : ""}`);
      const body = req.method === "POST" ? await req.text() : undefined;
      const res = await fetch(`${upstream}${url.pathname}${url.search}`, { method: req.method, headers: req.headers, body });
      return new Response(await res.text(), { status: res.status, headers: { "content-type": "application/json" } });
    },
  });
}, 120000);
afterAll(async () => {
  proxy?.stop(true);
  await lab?.cleanup();
});

/** `nsh doctor` with the lab's nsh.conf; asynchronous, the proxy answers from this process. */
async function doctor() {
  const p = Bun.spawn([NSH_BIN, "doctor"], { env: { ...lab.nix.env, NSH_CONF: lab.nshConf }, stdout: "pipe", stderr: "pipe" });
  const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()]);
  return { code: await p.exited, out, err };
}

test("https with the CA file: nsh doctor passes and a build goes through the TLS proxy", async () => {
  confWith(lab, { "slurm-api-scheme": "https", "slurm-api-port": String(proxy.port), "slurm-api-ca-file": caFile });
  try {
    seen.length = 0;
    const d = await doctor();
    if (d.code !== 0) console.log(d.out, d.err);
    expect(d.out).toMatch(/^ok +slurmrestd: slurm REST at https:\/\/127\.0\.0\.1:/m);
    expect(d.code).toBe(0);
    expect(seen.some((l) => l.endsWith("(token)"))).toBe(true);
    seen.length = 0;
    const s = salt();
    const r = await lab.nixBuild([lab.nix.expr("slurm-job"), "--argstr", "salt", s]);
    if (r.code !== 0) console.log(r.stderr);
    expect(r.code).toBe(0);
    expect(fs.readFileSync(r.stdout.trim(), "utf8")).toBe(`job ${s}\n`);
    expect(jobsOf(lab, s)[0]?.state).toBe("succeeded");
    expect(seen.some((l) => /^POST .*\/job\/submit \(token\)$/.test(l))).toBe(true);
    expect(r.stderr).not.toContain("plain http");
  } finally {
    lab.writeConf();
  }
}, 180000);

test("https: the reaper cancels the job of an interrupted build through the TLS proxy", async () => {
  confWith(lab, { "slurm-api-scheme": "https", "slurm-api-port": String(proxy.port), "slurm-api-ca-file": caFile });
  const s = salt();
  const p = Bun.spawn(["nix-build", "--store", "daemon", "--option", "build-hook", NSH_BIN, "--no-out-link", lab.nix.expr("slurm-job"), "--argstr", "salt", s, "--argstr", "sleep", "60"], {
    env: lab.nix.env,
    cwd: lab.nix.root,
    stdio: ["ignore", "pipe", "pipe"],
  });
  try {
    const id = await jobInState(lab, s, "RUNNING", 60_000);
    expect(id).toBeDefined();
    seen.length = 0;
    p.kill("SIGINT");
    expect(await jobEnded(lab, id!, 30_000)).toBe("CANCELLED");
    expect(seen.some((l) => l.startsWith("DELETE ") && l.endsWith("(token)"))).toBe(true);
  } finally {
    p.kill("SIGKILL");
    lab.writeConf();
  }
}, 120000);

test("https without the CA file: the certificate is refused, nothing is sent", async () => {
  confWith(lab, { "slurm-api-scheme": "https", "slurm-api-port": String(proxy.port) });
  try {
    seen.length = 0;
    const d = await doctor();
    const line = d.out.split("\n").find((l) => l.includes("slurmrestd")) ?? "";
    console.log(line);
    expect(d.code).toBe(1);
    expect(line).toMatch(/^FAIL +slurmrestd: .*certificate.*slurm-api-ca-file/);
    expect(seen).toEqual([]);
  } finally {
    lab.writeConf();
  }
});

test("plain http to a name that is not loopback: a warning naming the host, once per process", async () => {
  const host = os.hostname().split(".")[0]!; // resolves here, but by its name it could be anywhere
  confWith(lab, { "slurm-api-host": host, "login-host": "127.0.0.1" });
  try {
    const d = await doctor();
    expect(d.out).toMatch(/^ok +slurmrestd:/m);
    expect(d.err).toContain(`warning: the Slurm JWT goes to slurmrestd at ${host}:${lab.slurm.restPort} over plain http`);
    const s = salt();
    const r = await lab.nixBuild([lab.nix.expr("slurm-job"), "--argstr", "salt", s]);
    if (r.code !== 0) console.log(r.stderr);
    expect(r.code).toBe(0);
    expect(r.stderr.split(`slurmrestd at ${host}:${lab.slurm.restPort} over plain http`).length - 1).toBe(1);
  } finally {
    lab.writeConf();
  }
}, 180000);

test("an inline slurm-jwt-token in an nsh.conf others may read draws a warning naming the file", async () => {
  const token = await lab.slurm.token("root", 3600);
  confWith(lab, { "slurm-jwt-token-file": "", "slurm-jwt-token": token });
  try {
    fs.chmodSync(lab.nshConf, 0o644);
    const open = await doctor();
    expect(open.out).toMatch(new RegExp(`^ok +nsh\\.conf: .*${lab.nshConf}:\\d+: 'slurm-jwt-token' is a secret, but .* is readable by group and others`, "m"));
    expect(open.out + open.err).not.toContain(token);
    fs.chmodSync(lab.nshConf, 0o600);
    const closed = await doctor();
    expect(closed.out).not.toContain("is readable by");
    expect(closed.code).toBe(0);
  } finally {
    lab.writeConf();
  }
});
