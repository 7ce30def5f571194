// Expected: real Nix 2.8 takes nsh's accept: it shows `building '…' on 'slurm:<api-host>'`, sends
// the input closure and the wanted outputs, shows the executor's message and its fd-4 build log,
// and a failing executor status fails the build ("failed with exit code 1"; the log line is in
// `nix-store -l`; Nix >= 2.29 words it "Cannot build '…'. Reason: builder failed with exit code 1").
// Through the daemon and single-user. The hook here is nsh's loop with a test executor
// (test/hook/fixtures/test-hook.ts), not the shipped binary, which has no test executor.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { startNixLab, type NixLab } from "../lab/nix.ts";
import { builderFailed } from "../lab/nix-words.ts";

let lab: NixLab;
let hook: string;
beforeAll(async () => {
  lab = await startNixLab({ name: "accept" });
  // a set-up nsh (slurm-state-dir and a token): one that is not declines every build
  const jwt = path.join(lab.root, "slurm.jwt");
  fs.writeFileSync(jwt, "test-token\n", { mode: 0o600 });
  fs.writeFileSync(path.join(lab.confDir, "nsh.conf"), `slurm-api-host = login.test\nmandatory-system-features = nsh\nslurm-state-dir = /cluster/nsh\nslurm-jwt-token-file = ${jwt}\n`);
  hook = path.join(lab.root, "test-hook");
  const record = path.join(lab.root, "record.json");
  fs.writeFileSync(hook, `#!/bin/sh\nTEST_HOOK_RECORD='${record}' exec '${process.execPath}' '${path.join(import.meta.dir, "fixtures", "test-hook.ts")}' "$@"\n`, { mode: 0o755 });
  await lab.startDaemon();
});
afterAll(async () => {
  await lab?.cleanup();
});

describe.each([
  ["through the daemon", ["--store", "daemon"]],
  ["single-user", [] as string[]],
])("%s", (_mode, storeArgs) => {
  test("Nix takes the accept, sends inputs and wanted outputs, shows the log, fails with the executor's status", async () => {
    const salt = `ac${Date.now().toString(36)}`;
    const topDrv = (await lab.run(["nix-instantiate", lab.expr("chain"), "--argstr", "salt", salt])).stdout.trim();
    const depDrv = (await lab.run(["nix-store", "-q", "--references", topDrv])).stdout.split("\n").find((p) => p.endsWith(".drv"))!;
    // dep is built here first (this machine offers nsh for it), so only top goes to the hook
    const dep = await lab.run(["nix-store", "--realise", depDrv, "--option", "system-features", "nsh"]);
    expect(dep.code).toBe(0);
    const depOut = dep.stdout.trim();
    const r = await lab.run(["nix-build", ...storeArgs, topDrv, "--no-out-link", "--option", "build-hook", hook, "--option", "max-jobs", "0", "-v"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`building '${topDrv}' on 'slurm:login.test'`);
    expect(r.stderr).toContain("nsh: the test executor runs");
    expect(r.stderr).toContain(`test executor log line for ${topDrv}`);
    expect(r.stderr).toMatch(builderFailed(lab.nixVersionNumbers, topDrv, 1));
    expect((await lab.run(["nix-store", "-l", topDrv])).stdout).toBe(`test executor log line for ${topDrv}\n`);
    const rec = JSON.parse(fs.readFileSync(path.join(lab.root, "record.json"), "utf8"));
    expect(rec.req).toEqual({ amWilling: false, system: "x86_64-linux", drvPath: topDrv, requiredFeatures: ["nsh"] });
    expect(rec.inputs).toEqual([depOut]);
    expect(rec.wantedOutputs).toEqual(["out"]);
    expect([rec.machine, rec.verbosity]).toEqual(["slurm:login.test", 4]);
    expect(rec.argv).toEqual(["4"]);
  });
});
