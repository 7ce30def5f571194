// Expected: nsh.conf `trusted` pins apply on the build hook's path, to every ssh connection it
// makes to the job's node, OpenSSH's bulk session included. Here the node's host key is in no
// known_hosts file: without a pin the build fails naming the unknown host key; with the node's
// key pinned in `trusted` the build succeeds, its big input and output going through OpenSSH.
import { afterAll, beforeAll, expect, test } from "bun:test";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { confWith, hasStackTrace, jobsOf, salt, squeue, until } from "./helpers.ts";

let lab: ClusterLab;
let unknownNodeConfig: string;
const node = os.hostname().split(".")[0]!;
beforeAll(async () => {
  lab = await startClusterLab("trusted");
  // The node's own block comes first (ssh takes the first value): no HostKeyAlias, an empty
  // known_hosts. The login host keeps the lab's settings.
  const emptyKnownHosts = path.join(lab.nix.root, "empty_known_hosts");
  fs.writeFileSync(emptyKnownHosts, "");
  unknownNodeConfig = path.join(lab.nix.root, "unknown-node.ssh_config");
  fs.writeFileSync(unknownNodeConfig, [
    `Host ${node}`,
    "  HostName 127.0.0.1",
    `  Port ${lab.sshd.port}`,
    "  User root",
    `  IdentityFile ${lab.sshd.identityFile}`,
    "  IdentitiesOnly yes",
    `  UserKnownHostsFile ${emptyKnownHosts}`,
    "  GlobalKnownHostsFile /dev/null",
    "  StrictHostKeyChecking yes",
    "",
    fs.readFileSync(lab.sshConfig, "utf8").replace(` ${node} `, " "),
  ].join("\n"));
}, 120000);
afterAll(async () => {
  await lab?.cleanup();
});

async function buildBig(s: string) {
  const src = path.join(lab.nix.root, `big-${s}`);
  fs.writeFileSync(src, crypto.randomBytes(3 << 20));
  return lab.nixBuild([lab.nix.expr("big-io"), "--argstr", "salt", s, "--arg", "src", src]);
}

test("the node's host key unknown: refused without a pin, built with the key pinned in trusted", async () => {
  confWith(lab, { "ssh-config": unknownNodeConfig, "openssh-min-size": "1M" });
  const refused = await buildBig(salt());
  if (refused.code === 0) console.log(refused.stderr);
  expect(refused.code).not.toBe(0);
  expect(refused.stderr).toContain(`node ${node}`);
  expect(refused.stderr).toMatch(/the host key of .* is not known/);
  expect(hasStackTrace(refused.stderr)).toBe(false);

  const s = salt();
  confWith(lab, { "ssh-config": unknownNodeConfig, "openssh-min-size": "1M", trusted: `${node} ${lab.sshd.hostPublicKey}` });
  try {
    const r = await buildBig(s);
    if (r.code !== 0) console.log(r.stderr);
    expect(r.code).toBe(0);
    const out = r.stdout.trim();
    expect((await lab.nix.run(["nix-store", "--verify-path", out])).code).toBe(0);
    const job = jobsOf(lab, s)[0]!;
    expect(job.state).toBe("succeeded");
    // The bulk session (OpenSSH's ssh) got in too: it trusts the key the pin verified.
    expect(r.stderr).toContain(`from 'job ${job.jobId} on ${job.node} (OpenSSH)'`);
    expect(r.stderr).not.toContain("bulk transfers stay on ssh2");
  } finally {
    lab.writeConf();
  }
  expect(await until(async () => ((await squeue(lab)).size === 0 ? true : undefined), 30000)).toBe(true);
}, 240000);
