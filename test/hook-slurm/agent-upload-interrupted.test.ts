// Expected: a hook killed (SIGKILL, as Nix kills it on Ctrl-C) in the middle of uploading nsh's
// agent binary to the cluster leaves nothing installed under the binary's hash name, and no
// temporary file behind once the cluster side noticed; the next build places the whole binary
// and succeeds. (Before: the remote `cat` ended with status 0 on EOF and the truncated file was
// renamed into place, failing every later build.)
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { agentBinaryPath } from "../../src/hook/job-plan.ts";
import { NSH_BIN, startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { jobsOf, salt, until } from "./helpers.ts";

let lab: ClusterLab;
beforeAll(async () => {
  lab = await startClusterLab("agent-cut");
}, 120000);
afterAll(async () => {
  await lab?.cleanup();
});

async function sha256Of(file: string): Promise<string> {
  const h = new Bun.CryptoHasher("sha256");
  for await (const chunk of Bun.file(file).stream()) h.update(chunk);
  return h.digest("hex");
}

test("an agent upload cut short installs nothing; the next build places it and succeeds", async () => {
  const sha = await sha256Of(NSH_BIN);
  const bin = agentBinaryPath(lab.clusterState, sha);
  const binDir = path.dirname(bin);
  const uploads = () => (fs.existsSync(binDir) ? fs.readdirSync(binDir).filter((f) => f.includes(".upload-")) : []);
  const jobDir = path.join(lab.clusterState, "jobs", `cut-${salt()}`);
  const stalled = [path.join(import.meta.dir, "stalled-upload.ts"), lab.sshConfig, "127.0.0.1", bin, sha, NSH_BIN, jobDir, String(8 << 20)];
  const child = Bun.spawn([process.execPath, ...stalled], { stdout: "pipe", stderr: "pipe" });
  try {
    // Kill it once part of the binary has reached the cluster.
    const arrived = await until(() => {
      const f = uploads()[0];
      return f && fs.statSync(path.join(binDir, f)).size > 0 ? f : undefined;
    }, 60000);
    if (!arrived) console.log(await new Response(child.stderr).text());
    expect(arrived).toBeDefined();
  } finally {
    child.kill("SIGKILL");
    await child.exited;
  }
  // The cluster side sees its stdin end: it must not install what it got, and cleans up.
  const cleaned = await until(() => (uploads().length === 0 ? true : undefined), 30000);
  expect(cleaned).toBe(true);
  expect(fs.existsSync(bin)).toBe(false);

  const s = salt();
  const r = await lab.nixBuild([lab.nix.expr("slurm-job"), "--argstr", "salt", s]);
  if (r.code !== 0) console.log(r.stderr);
  expect(r.code).toBe(0);
  expect(jobsOf(lab, s).map((j) => j.state)).toEqual(["succeeded"]);
  expect(fs.statSync(bin).size).toBe(fs.statSync(NSH_BIN).size);
}, 240000);
