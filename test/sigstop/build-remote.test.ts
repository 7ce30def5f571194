// Expected: with Nix's real build-remote as the actual hook, building over ssh on a private sshd
// (127.0.0.1), nix-sigstop is transparent: build-remote accepts the IFD build, the output is built in
// the remote store and copied back under Nix's output locks, nix is stopped meanwhile, and the
// result equals plain nix's with the same builders.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import path from "node:path";
import { startNixLab, type NixLab } from "../lab/nix.ts";
import { buildersLine, startSshd, type SshdLab } from "../lab/sshd.ts";
import { nix, report, salt, sigstop } from "./helpers.ts";

let lab: NixLab;
let sshd: SshdLab;
beforeAll(async () => {
  lab = await startNixLab({ name: "remote" });
  sshd = await startSshd(lab);
  lab.addCleanup(() => sshd.stop());
  // The hook runs in the daemon's environment: that is where ssh must find its config.
  await lab.startDaemon({ NIX_SSHOPTS: sshd.sshOpts });
});
afterAll(async () => {
  await lab?.cleanup();
});

const remoteArgs = () => ["--option", "max-jobs", "0", "--builders", buildersLine(sshd)];
const expr = (s: string) => `import ${lab.expr("ifd-sleep")} { salt = "${s}"; sleep = "1"; }`;

describe.each([
  ["through the daemon", ["--store", "daemon"]],
  ["with root's default store", []],
])("build-remote over ssh %s", (_name, storeArgs) => {
  test("accepts the IFD build, builds it remotely and copies it back", async () => {
    const s = salt();
    const rep = path.join(lab.root, `remote-${s}.json`);
    const r = await sigstop(lab, ["--report", rep, "eval", ...storeArgs, ...remoteArgs(), "--impure", "--expr", expr(s)], { NIX_SSHOPTS: sshd.sshOpts });
    expect(r.stderr).not.toContain("error:");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`value = "ifd-${s}"`);
    const rp = report(rep);
    expect(rp.builds.map((b) => [b.reply, b.ok])).toEqual([["accept", true]]);
    expect(rp.stops).toBe(1);
    // The generator was built in the remote (chroot) store, not locally.
    const drv = rp.builds[0]!.drv;
    const out = (await lab.run(["nix-store", "-q", "--outputs", drv])).stdout.trim();
    expect(out.startsWith(lab.storeDir)).toBe(true);
    const valid = await lab.run(["nix-store", "--store", sshd.remoteStore, "--check-validity", out]);
    expect(`${out}: ${valid.stderr}`).toBe(`${out}: `);
  });
});

test("the same result as plain nix with the same builders", async () => {
  const s = salt();
  const wrapped = await sigstop(lab, ["--quiet", "eval", "--store", "daemon", ...remoteArgs(), "--impure", "--expr", expr(s)]);
  const plain = await nix(lab, ["eval", "--store", "daemon", ...remoteArgs(), "--impure", "--expr", expr(s)]);
  expect(wrapped.code).toBe(0);
  expect(wrapped.stdout).toBe(plain.stdout);
});
