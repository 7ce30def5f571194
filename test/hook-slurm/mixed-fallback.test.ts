// Expected: with nsh as the build hook and Slurm configured, one nix-build whose closure mixes
// builds nsh takes (feature `nsh`) with builds it declines (feature `sshonly`, offered only by an
// ssh builder in Nix's `builders`) gets all of them built: nsh's as Slurm jobs on the node, the
// others by Nix's own build-remote over ssh (nsh's fallback), and a Slurm job whose inputs came
// back from the ssh builder receives them. Each build lands in the store it was sent to.
// The ssh builder offers `sshonly` from its own configuration (NIX_CONFIG in its remote-program), not
// with `&system-features=` in remote-store: Nix 2.26 and 2.34 pass remote-store to the remote shell
// unquoted, so a `&` there ends the command ("system-features=sshonly: command not found"), with or
// without nsh (nsh's fallback hands Nix's build-remote the builders line as it is).
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { buildersLine } from "../lab/sshd.ts";
import { jobsOf, salt } from "./helpers.ts";

let lab: ClusterLab;
beforeAll(async () => {
  lab = await startClusterLab("mixed");
}, 120000);
afterAll(async () => {
  await lab?.cleanup();
});

test("one nix-build: Slurm jobs for nsh's builds, build-remote over ssh for the rest", async () => {
  const s = salt();
  const sshStoreRoot = path.join(lab.nix.root, "ssh-builder");
  const sshStore = `local?root=${sshStoreRoot}`;
  const program = path.join(lab.nix.root, "ssh-builder-nix-store");
  const builderProgram = lab.sshd.remotePrograms!.ssh;
  fs.writeFileSync(program, `#!/bin/sh\nNIX_CONFIG='system-features = sshonly' exec ${builderProgram} "$@"\n`, { mode: 0o755 });
  const line = buildersLine(lab.sshd, { features: ["sshonly"], remoteStore: sshStore, remoteProgram: program });
  const r = await lab.nixBuild([lab.nix.expr("mixed"), "--argstr", "salt", s, "--option", "builders", line], 180000);
  if (r.code !== 0) console.log(r.stderr);
  expect(r.code).toBe(0);
  const out = r.stdout.trim();
  expect(fs.readFileSync(out, "utf8").trim()).toBe(`top on-slurm-${s} on-ssh-${s}`);

  const q = async (store: string, p: string) => (await lab.nix.run(["nix-store", "--store", store, "--check-validity", p])).code === 0;
  const drvOf = async (name: string) => {
    const drvs = (await lab.nix.run(["nix-store", "-qR", (await lab.nix.run(["nix-store", "-q", "--deriver", out])).stdout.trim()])).stdout.trim().split("\n");
    return drvs.find((d) => d.endsWith(`-${name}-${s}.drv`))!;
  };
  const outOf = async (name: string) => (await lab.nix.run(["nix-store", "-q", "--outputs", await drvOf(name)])).stdout.trim();
  const [onSlurm, onSsh] = [await outOf("on-slurm"), await outOf("on-ssh")];

  // Where each was built: nsh's on the node's store, the declined one on the ssh builder's only.
  expect(await q(lab.nodeStore, onSlurm)).toBe(true);
  expect(await q(lab.nodeStore, out)).toBe(true);
  expect(await q(sshStore, onSsh)).toBe(true);
  expect(await q(sshStore, onSlurm)).toBe(false);
  // top's job needed on-ssh as an input: it was copied from the local store to the node.
  expect(await q(lab.nodeStore, onSsh)).toBe(true);
  expect(r.stderr).toContain("on 'slurm:127.0.0.1'");
  expect(r.stderr).toContain(`on '${line.split(" ")[0]}'`);

  const jobs = jobsOf(lab, s);
  expect(jobs.map((j) => path.basename(j.drv).slice(33).replace(`-${s}.drv`, "")).sort()).toEqual(["on-slurm", "top"]);
  expect(jobs.every((j) => j.state === "succeeded")).toBe(true);
}, 240000);
