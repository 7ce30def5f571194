// nix-sigstop on real Nix 2.8 evaluations: the results are exactly plain nix's, nix is seen stopped
// (state T) while an IFD build runs and running again afterwards, every IFD is counted, and
// `nix build` and evaluations without IFD pass through untouched.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import path from "node:path";
import { startNixLab, type NixLab } from "../lab/nix.ts";
import { findNix, nix, report, salt, sigstop, spawnSigstop, state, waitFor } from "./helpers.ts";

let lab: NixLab;
beforeAll(async () => {
  lab = await startNixLab({ daemon: true, name: "ifd" });
});
afterAll(async () => {
  await lab?.cleanup();
});

const ifdExpr = (s: string, sleep = "0") => `import ${lab.expr("ifd-sleep")} { salt = "${s}"; sleep = "${sleep}"; }`;

describe("through the daemon", () => {
  test("an IFD evaluation gives plain nix's result, byte for byte", async () => {
    const s = salt();
    const wrapped = await sigstop(lab, ["--quiet", "eval", "--store", "daemon", "--impure", "--expr", ifdExpr(s)]);
    const plain = await nix(lab, ["eval", "--store", "daemon", "--impure", "--expr", ifdExpr(s)]);
    expect(wrapped.code).toBe(0);
    expect(wrapped.stdout).toBe(plain.stdout);
    expect(wrapped.stdout).toContain(`ifd-${s}`);
  });

  test("nix is stopped while the IFD builds and running afterwards", async () => {
    const rep = path.join(lab.root, "stop.json");
    const p = spawnSigstop(lab, ["--report", rep, "eval", "--store", "daemon", "--impure", "--expr", ifdExpr(salt(), "3")]);
    const pid = await findNix(p.pid);
    await waitFor(() => state(pid) === "T", 10000, "nix in state T");
    // Stays stopped during the build, not just a blip.
    await Bun.sleep(1000);
    expect(state(pid)).toBe("T");
    await waitFor(() => state(pid) !== "T", 10000, "nix continued");
    expect(await p.exited).toBe(0);
    const r = report(rep);
    expect(r.ifdBuilds).toBe(1);
    expect(r.stops).toBe(1);
    expect(r.stoppedSeconds as number).toBeGreaterThan(2);
    expect(r.builds[0]?.ok).toBe(true);
  });

  test("several IFDs in one evaluation: each is waited for", async () => {
    const rep = path.join(lab.root, "multi.json");
    const s = salt();
    const args = ["eval", "--store", "daemon", "--json", "--impure", "--expr", `import ${lab.expr("ifd-multi")} { salt = "${s}"; n = 3; sleep = "1"; }`];
    const wrapped = await sigstop(lab, ["--report", rep, ...args]);
    expect(wrapped.code).toBe(0);
    expect(JSON.parse(wrapped.stdout).sum).toBe(126);
    const r = report(rep);
    expect(r.ifdBuilds).toBe(3);
    expect(r.stops).toBe(3);
    expect(wrapped.stderr).toContain("nix-sigstop: 3 builds waited for; nix stopped 3 times");
  });

  test("nix build through the wrapper builds what depends on an IFD", async () => {
    const s = salt();
    const r = await sigstop(lab, ["build", "--store", "daemon", "--no-link", "--json", "-f", lab.expr("build-ifd"), "--argstr", "salt", s]);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout)[0].outputs.out as string;
    expect(out.startsWith(lab.storeDir)).toBe(true);
    const check = await lab.run(["nix-store", "--store", "daemon", "--check-validity", out]);
    expect(check.code).toBe(0);
  });

  test("an evaluation without IFD is byte-identical and never stops nix", async () => {
    const expr = `let r = import ${lab.expr("noifd")} { size = 20000; }; in { inherit (r) count sum drvPath; list = builtins.genList toString 500; }`;
    const args = ["eval", "--store", "daemon", "--json", "--impure", "--expr", expr];
    const wrapped = await sigstop(lab, ["--quiet", ...args]);
    const plain = await nix(lab, args);
    expect(wrapped.code).toBe(plain.code);
    expect(wrapped.stdout).toBe(plain.stdout);
    expect(wrapped.stderr).toBe(plain.stderr);
    expect(wrapped.stdout.length).toBeGreaterThan(1000);
  });
});

describe("other ways of naming the daemon", () => {
  test.each([
    ["--store unix://<socket>", () => ["--store", `unix://${lab.socket}`], {}],
    ["NIX_REMOTE=daemon", () => [], { NIX_REMOTE: "daemon" }],
  ])("%s", async (_name, storeArgs, env) => {
    const rep = path.join(lab.root, `named-${salt()}.json`);
    const s = salt();
    const r = await sigstop(lab, ["--report", rep, "eval", ...storeArgs(), "--impure", "--expr", ifdExpr(s, "1")], env as Record<string, string>);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`ifd-${s}`);
    expect(report(rep).stops).toBe(1);
    expect(report(rep).proxy!.connections).toBeGreaterThanOrEqual(1);
  });
});

describe("root with the default store", () => {
  test("resolves to the local store and still stops nix during the IFD", async () => {
    const rep = path.join(lab.root, "local.json");
    const s = salt();
    const wrapped = await sigstop(lab, ["--report", rep, "eval", "--impure", "--expr", ifdExpr(s, "1")]);
    const plain = await nix(lab, ["eval", "--impure", "--expr", ifdExpr(salt())]);
    expect(wrapped.code).toBe(0);
    expect(wrapped.stdout).toBe(plain.stdout.replace(/ifd-[a-z0-9]+/g, `ifd-${s}`).replace(/"[^"]+\.drv"/, wrapped.stdout.match(/"[^"]+\.drv"/)![0]));
    expect(report(rep).stops).toBe(1);
  });
});
