// Expected: a build's inputs and outputs of at least openssh-min-size go between the hook and the
// job's node through OpenSSH's ssh (a second serve session on the node's store), shown as
// such in nix-build's copy lines, and arrive byte for byte; the small paths stay on the ssh2
// session. With openssh-min-size = 0 nothing goes through OpenSSH. Copy lines name the job and
// its node, not a socket path. When ssh cannot get in, the build still succeeds on ssh2 and says why.
// The OpenSSH session uses the store named by store-dir (nsh says it: the lab's sshd, like a real
// one, gives sessions no NIX_STORE_DIR), so the big input lands in the node's store under store-dir.
import { afterAll, beforeAll, expect, test } from "bun:test";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { confWith, jobsOf, salt } from "./helpers.ts";

let lab: ClusterLab;
beforeAll(async () => {
  lab = await startClusterLab("bulk");
}, 120000);
afterAll(async () => {
  await lab?.cleanup();
});

/** nix-build's "copying path 'P' from 'A' to 'B'" lines, as [P, A, B]. */
const copyLines = (stderr: string) => [...stderr.matchAll(/copying path '([^']+)' from '([^']+)' to '([^']+)'/g)].map((m) => [m[1]!, m[2]!, m[3]!] as const);

async function buildBig(s: string) {
  const src = path.join(lab.nix.root, `big-${s}`);
  fs.writeFileSync(src, crypto.randomBytes(3 << 20));
  const r = await lab.nixBuild([lab.nix.expr("big-io"), "--argstr", "salt", s, "--arg", "src", src]);
  if (r.code !== 0) console.log(r.stderr);
  expect(r.code).toBe(0);
  const out = r.stdout.trim();
  const drv = (await lab.nix.run(["nix-store", "-q", "--deriver", out])).stdout.trim();
  const input = (await lab.nix.run(["nix-store", "-q", "--binding", "big", drv])).stdout.trim();
  // The output is the input twice: it went to the node and came back whole.
  const got = fs.readFileSync(out);
  const want = fs.readFileSync(input);
  expect(want.length).toBe(3 << 20);
  expect(Buffer.compare(got, Buffer.concat([want, want]))).toBe(0);
  expect((await lab.nix.run(["nix-store", "--verify-path", out])).code).toBe(0);
  const job = jobsOf(lab, s).find((j) => j.drv.includes("big-output"))!;
  return { r, out, input, job };
}

test("openssh-min-size = 1M: the big input goes and the big output comes back through OpenSSH", async () => {
  confWith(lab, { "openssh-min-size": "1M" });
  try {
    const { r, out, input, job } = await buildBig(salt());
    const lines = copyLines(r.stderr);
    const node = `job ${job.jobId} on ${job.node}`;
    expect(lines).toContainEqual([input, "local store", `${node} (OpenSSH)`]);
    expect(lines).toContainEqual([out, `${node} (OpenSSH)`, "local store"]);
    expect(r.stderr).not.toContain("bulk transfers stay on ssh2");
    expect(job.state).toBe("succeeded");
    // On the node: valid in the store whose directory is store-dir (not Nix's default /nix/store).
    const nodeStore = { env: { NIX_STORE_DIR: lab.nix.storeDir } };
    expect((await lab.nix.run(["nix-store", "--store", lab.nodeStore, "--check-validity", input], nodeStore)).code).toBe(0);
    expect((await lab.nix.run(["nix-store", "--store", lab.nodeStore, "--verify-path", input], nodeStore)).code).toBe(0);
  } finally {
    lab.writeConf();
  }
}, 180000);

test("openssh-min-size = 0: every NAR stays on the ssh2 session, named by its job", async () => {
  confWith(lab, { "openssh-min-size": "0" });
  try {
    const { r, out, input, job } = await buildBig(salt());
    const lines = copyLines(r.stderr);
    const node = `job ${job.jobId} on ${job.node}`;
    expect(lines).toContainEqual([input, "local store", node]);
    expect(lines).toContainEqual([out, node, "local store"]);
    expect(r.stderr).not.toContain("(OpenSSH)");
  } finally {
    lab.writeConf();
  }
}, 180000);

test("OpenSSH's ssh cannot use the ssh config: the build's NARs stay on ssh2, and it says why", async () => {
  confWith(lab, { "openssh-min-size": "1M" });
  const original = fs.readFileSync(lab.sshConfig, "utf8");
  // An option OpenSSH refuses outright and ssh2 does not use: only the bulk session fails.
  fs.writeFileSync(lab.sshConfig, `${original}\n  KexAlgorithms nonexistent-kex\n`);
  try {
    const { r, out, input, job } = await buildBig(salt());
    const node = `job ${job.jobId} on ${job.node}`;
    expect(copyLines(r.stderr)).toContainEqual([input, "local store", node]);
    expect(copyLines(r.stderr)).toContainEqual([out, node, "local store"]);
    expect(r.stderr).toContain("bulk transfers stay on ssh2");
    expect(r.stderr).toContain("nonexistent-kex");
  } finally {
    fs.writeFileSync(lab.sshConfig, original);
    lab.writeConf();
  }
}, 180000);
