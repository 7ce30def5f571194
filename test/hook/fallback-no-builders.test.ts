// Expected: with no builders, Nix's own build-remote would answer `# decline-permanently` before
// reading any try, so nsh does not start it (a process and ~40 ms per declining hook saved) and
// answers for it: `# decline` to Nix while it may still take a later build itself (Nix keeps
// asking it), `# decline-permanently` when it takes nothing (no executor for the scheduler). With
// nsh as build-hook and no builders, nix-build builds locally and succeeds (Nix 2.8, single-user).
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { startNixLab, type NixLab } from "../lab/nix.ts";
import { DIST_NSH, confLoader, request, runInProcess, settingsBlob, tryReq } from "./harness.ts";

let lab: NixLab;
beforeAll(async () => {
  lab = await startNixLab({ name: "nobuild" });
  fs.writeFileSync(path.join(lab.confDir, "nsh.conf"), "# the lab's derivations do not require nsh\nmandatory-system-features = nsh\n");
});
afterAll(async () => {
  await lab?.cleanup();
});

const blob = () => settingsBlob([["builders", ""], ["max-jobs", "1"]]);
const drv = (n: string) => `/nix/store/${n.repeat(32)}-x.drv`;

test("no builders: `# decline` to Nix while nsh may take later builds, without starting build-remote", async () => {
  const r = await runInProcess({
    chunks: [blob(), request(tryReq(drv("a"))), request(tryReq(drv("b")))],
    conf: confLoader({ "mandatory-system-features": ["nsh"] }),
    executors: { slurm: async () => 0 },
    env: lab.env,
    verbosity: 6,
  });
  expect(r.code).toBe(0);
  expect(r.replies).toEqual(["# decline", "# decline"]);
  expect(r.messages.filter((m) => m.level <= 1)).toEqual([]);
  // build-remote was never started: it had no machine to offer
  const debug = r.messages.filter((m) => m.level === 6).map((m) => m.msg);
  expect(debug.filter((m) => m.includes("for the builds nsh declines"))).toHaveLength(0);
  expect(debug.filter((m) => m.includes("Nix's own build hook would decline every build"))).toHaveLength(1);
});

test("no builders, no executor: decline-permanently is passed on, with a warning", async () => {
  const r = await runInProcess({
    chunks: [blob(), request(tryReq(drv("c")))],
    conf: confLoader({ "job-scheduler": "pbs" }),
    executors: {},
    env: lab.env,
  });
  expect(r.replies).toEqual(["# decline-permanently"]);
  expect(r.messages.filter((m) => m.level === 1).map((m) => m.msg)).toEqual([
    `nsh: warning: '${drv("c")}' is for the cluster, but this nsh has no executor for job-scheduler 'pbs'; handing it to Nix's own build hook`,
  ]);
});

test("nix-build with nsh as build hook and no builders builds locally", async () => {
  const salt = `nb${Date.now().toString(36)}`;
  const t0 = performance.now();
  const r = await lab.run(["nix-build", lab.expr("remote"), "--argstr", "salt", salt, "--no-out-link", "--option", "build-hook", DIST_NSH, "--builders", "", "-v"]);
  const ms = performance.now() - t0;
  expect(r.stderr).not.toContain("error:");
  expect(r.code).toBe(0);
  const out = r.stdout.trim();
  expect(fs.readFileSync(path.join(lab.storeDir, path.basename(out)), "utf8")).toBe(`remote ${salt}\n`);
  // nsh was asked (its reason shows at -v), the build ran here: no "building … on" a machine
  expect(r.stderr).toContain("does not require the mandatory feature 'nsh'");
  expect(r.stderr).toContain(`building remote ${salt}`);
  expect(r.stderr).not.toMatch(/building '.*' on '/);
  console.log(`nix-build, fallback declined, local build: ${ms.toFixed(0)} ms`);
});

// Nix 2.8 does not cap the verbosity: with nine -v it runs the hook as `nsh 9`, which once made nsh
// print its usage and Nix fail every build with "unexpected EOF reading a line".
test("nix-build -vvvvvvvvv with nsh as build hook still builds", async () => {
  const salt = `nv${Date.now().toString(36)}`;
  const r = await lab.run(["nix-build", lab.expr("remote"), "--argstr", "salt", salt, "--no-out-link", "--option", "build-hook", DIST_NSH, "--builders", "", "-vvvvvvvvv"]);
  expect(r.stderr).not.toContain("unexpected EOF");
  expect(r.code).toBe(0);
});
