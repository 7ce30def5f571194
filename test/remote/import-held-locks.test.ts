// Expected: a build hook can bring outputs into the local store while Nix holds their output locks
// (the deadlock trap of nix-protocols.md §1.6), with both methods: NIX_HELD_LOCKS + a direct local
// import (Nix ≤ 2.28, Lix) and restore + register-validity (Nix ≥ 2.29), both on the real Nix 2.8.
// A plain import through the daemon would block on the lock until the build timed out.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { startNixLab, type NixLab } from "../lab/nix.ts";

let lab: NixLab;
beforeAll(async () => {
  lab = await startNixLab({ daemon: true, name: "held" });
});
afterAll(async () => {
  await lab?.cleanup();
});

const BUN = process.execPath;
const HOOK = path.join(import.meta.dir, "fixtures", "mini-hook.ts");

test.each(["held-locks", "restore-register"])("method %s: the hook's build succeeds and its output is valid locally", async (method) => {
  const script = path.join(lab.root, `hook-${method}`);
  fs.writeFileSync(script, `#!/bin/sh\nexec '${BUN}' '${HOOK}' "$@"\n`, { mode: 0o755 });
  const remote = `local?root=${path.join(lab.root, `remote-${method}`)}`;
  const salt = `${method}-${Date.now()}`;
  // The hook runs inside the daemon: its environment comes from there.
  await lab.startDaemon({ MINI_HOOK_METHOD: method, MINI_HOOK_REMOTE: remote });
  const t0 = Date.now();
  const r = await lab.run(["nix-build", "--store", "daemon", lab.expr("remote"), "--argstr", "salt", salt, "--no-out-link", "--option", "build-hook", script, "--option", "max-jobs", "0"], { timeoutMs: 60000 });
  expect(r.stderr).toContain(`mini-hook: imported`);
  expect(r.code).toBe(0);
  expect(Date.now() - t0).toBeLessThan(20000);
  const out = r.stdout.trim();
  expect((await lab.run(["nix-store", "--store", "daemon", "--check-validity", out])).code).toBe(0);
  expect((await lab.run(["nix-store", "--verify-path", out])).code).toBe(0);
  // Built remotely, not locally: the remote store has it too.
  expect((await lab.run(["nix-store", "--store", remote, "--check-validity", out])).code).toBe(0);
});
