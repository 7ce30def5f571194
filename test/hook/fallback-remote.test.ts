// Expected: a derivation nsh declines (it lacks the mandatory feature, or it is for another system
// than the cluster's) goes to Nix's own build-remote, which builds it over ssh on the lab's sshd:
// nix-build succeeds, shows `building '…' on 'ssh://…'` and the build's own output, the output is
// valid locally (copied back) and in the remote store, and `nix-store -l` has the build log. Nix
// 2.8, single-user, nsh as `--option build-hook`, builds forced to the hook with max-jobs 0.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { startNixLab, type NixLab } from "../lab/nix.ts";
import { buildersLine, startSshd, type SshdLab } from "../lab/sshd.ts";
import { DIST_NSH } from "./harness.ts";

let lab: NixLab;
let sshd: SshdLab;
beforeAll(async () => {
  lab = await startNixLab({ name: "fbremote" });
  sshd = await startSshd(lab);
});
afterAll(async () => {
  await lab?.cleanup();
});

describe.each([
  ["without the mandatory feature", "mandatory-system-features = nsh\n", "does not require the mandatory feature 'nsh'"],
  ["for another system than the cluster's", "system = aarch64-linux\n", "the cluster's is 'aarch64-linux'"],
])("a derivation %s", (_name, nshConf, reason) => {
  test("is built by Nix's build-remote over ssh", async () => {
    fs.writeFileSync(path.join(lab.confDir, "nsh.conf"), nshConf);
    const salt = `fr${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
    const drv = (await lab.run(["nix-instantiate", lab.expr("remote"), "--argstr", "salt", salt])).stdout.trim();
    const t0 = performance.now();
    const r = await lab.run(["nix-build", drv, "--no-out-link", "--option", "build-hook", DIST_NSH, "--option", "max-jobs", "0", "--builders", buildersLine(sshd), "-v"], {
      env: { NIX_SSHOPTS: sshd.sshOpts },
    });
    const ms = performance.now() - t0;
    expect(r.stderr).not.toContain("error:");
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(reason);
    expect(r.stderr).toContain(`building '${drv}' on 'ssh://${sshd.alias}`);
    expect(r.stderr).toContain(`building remote ${salt}`);
    const out = r.stdout.trim();
    expect(fs.readFileSync(path.join(lab.storeDir, path.basename(out)), "utf8")).toBe(`remote ${salt}\n`);
    expect((await lab.run(["nix-store", "--check-validity", out])).code).toBe(0);
    expect((await lab.run(["nix-store", "--store", sshd.remoteStore, "--check-validity", out])).code).toBe(0);
    const log = await lab.run(["nix-store", "-l", drv]);
    expect(log.stdout).toContain(`building remote ${salt}`);
    console.log(`fallback to build-remote over ssh (${_name}): ${ms.toFixed(0)} ms`);
  });
});
