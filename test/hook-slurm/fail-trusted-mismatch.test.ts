// Expected: nsh.conf `trusted` pins are exclusive on the build hook's path too. When `trusted` pins
// a key for the job's node that is not the key it presents, the build fails saying HOST KEY
// MISMATCH for the node, even though known_hosts lists the node's real key; the job is
// cancelled, and none is left queued or running.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import { startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { confWith, hasStackTrace, jobsOf, salt, squeue, until } from "./helpers.ts";

let lab: ClusterLab;
beforeAll(async () => {
  lab = await startClusterLab("pin-mismatch");
}, 120000);
afterAll(async () => {
  await lab?.cleanup();
});

test("trusted pins a wrong key for the node: the build fails on the mismatch, no job is left", async () => {
  const node = os.hostname().split(".")[0]!;
  // A well-formed ed25519 key that is not the sshd's host key: the client's own public key.
  const wrongKey = fs.readFileSync(`${lab.sshd.identityFile}.pub`, "utf8").trim().split(/\s+/).slice(0, 2).join(" ");
  expect(wrongKey).not.toBe(lab.sshd.hostPublicKey);
  const s = salt();
  confWith(lab, { trusted: `${node} ${wrongKey}` });
  try {
    const r = await lab.nixBuild([lab.nix.expr("slurm-job"), "--argstr", "salt", s], 90000);
    if (r.code === 0 || !r.stderr.includes("HOST KEY MISMATCH")) console.log(r.stderr);
    expect(r.timedOut).toBe(false);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("HOST KEY MISMATCH");
    expect(r.stderr).toContain(`node ${node}`);
    expect(hasStackTrace(r.stderr)).toBe(false);
    const [rec] = jobsOf(lab, s);
    expect(rec?.state).toBe("failed");
  } finally {
    lab.writeConf();
  }
  expect(await until(async () => ((await squeue(lab)).size === 0 ? true : undefined), 30000)).toBe(true);
}, 150000);
