// Expected: each personality of the compiled nsh loads only what it uses. `nsh --version`,
// `nix-sigstop --version`, the build hook (a declined and an accepted try) and the job agent never
// load ssh2; only a command that goes over ssh does. Every start pays for what it loads (ssh2 alone
// costs ~15 ms of CPU: ~3 MB of code, and key checks at load), and the hook starts once per build.
// Seen without timing: NSH_DEBUG_LOADED names a file nsh appends "ssh2" to when it evaluates ssh2
// (src/sys/no-cpu-features.ts); and should anything load ssh2 without that guard, ssh2 would look
// for `cpu-features` in node_modules from the working directory up, where a decoy leaves a mark.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { encodeSettings, encodeTry } from "../src/nix/hook-protocol.ts";

const NSH = path.join(import.meta.dir, "..", "dist", "nsh");
const SIGSTOP = path.join(import.meta.dir, "..", "dist", "nix-sigstop");
let dir: string;
let marker: string;
let trace: string;
let env: Record<string, string>;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-loads-"));
  marker = path.join(dir, "decoy-loaded");
  trace = path.join(dir, "trace");
  const decoy = path.join(dir, "node_modules", "cpu-features");
  fs.mkdirSync(decoy, { recursive: true });
  const pkg = { name: "cpu-features", version: "0.0.0", main: "index.js" };
  fs.writeFileSync(path.join(decoy, "package.json"), JSON.stringify(pkg));
  const code = `require("fs").appendFileSync(${JSON.stringify(marker)}, "ssh2\\n");\nmodule.exports = () => ({ flags: {} });\n`;
  fs.writeFileSync(path.join(decoy, "index.js"), code);
  // Set up enough that the hook takes a build (readiness.ts): else it declines without looking.
  fs.writeFileSync(path.join(dir, "jwt"), "header.payload.signature\n", { mode: 0o600 });
  const conf = `slurm-state-dir = ${path.join(dir, "cluster")}\nslurm-jwt-token-file = ${path.join(dir, "jwt")}\n`;
  fs.writeFileSync(path.join(dir, "nsh.conf"), conf);
  env = { ...(process.env as Record<string, string>), NSH_CONF: path.join(dir, "nsh.conf"), HOME: dir, NSH_DEBUG_LOADED: trace };
});
afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const traced = () => fs.existsSync(trace) && fs.readFileSync(trace, "utf8").includes("ssh2");
const loadedSsh2 = () => fs.existsSync(marker) || traced();

async function run(argv: string[], stdin?: Uint8Array): Promise<{ code: number; out: string; err: string }> {
  fs.rmSync(marker, { force: true });
  fs.rmSync(trace, { force: true });
  const p = Bun.spawn(argv, { cwd: dir, env, stdin: stdin ? "pipe" : "ignore", stdout: "pipe", stderr: "pipe" });
  if (stdin && p.stdin) {
    p.stdin.write(stdin);
    await p.stdin.end();
  }
  const timer = setTimeout(() => p.kill("SIGKILL"), 60_000);
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  clearTimeout(timer);
  return { code, out, err };
}

const hookInput = (feature: string) =>
  new Uint8Array([
    ...encodeSettings(new Map([["builders", ""], ["max-jobs", "1"]])),
    ...encodeTry({ amWilling: true, system: "x86_64-linux", drvPath: `/nix/store/${"a".repeat(32)}-x.drv`, requiredFeatures: [feature] }),
  ]);

test("the probe works: a command that goes over ssh loads ssh2", async () => {
  const r = await run([NSH, "copy", "--to", "127.0.0.1:1", `/nix/store/${"a".repeat(32)}-x`]);
  expect(r.code).not.toBe(0); // nothing listens there
  expect(loadedSsh2()).toBe(true);
});

test.each([
  ["nsh --version", [NSH, "--version"], "0.1.0\n"],
  ["nix-sigstop --version", [SIGSTOP, "--version"], "nix-sigstop (nsh) 0.1.0\n"],
  ["nsh hook --version", [NSH, "hook", "--version"], "nsh 0.1.0\n"],
])("%s loads no ssh2", async (_name, argv, want) => {
  const r = await run(argv);
  expect(r.out).toBe(want);
  expect(r.code).toBe(0);
  expect(loadedSsh2()).toBe(false);
});

test.each([
  ["nsh 3, a try it declines", [NSH, "3"], "benchmark", "# decline"],
  ["nsh hook 3, a try it declines", [NSH, "hook", "3"], "benchmark", "# decline"],
  ["nsh 3, a try it accepts (EOF instead of the inputs)", [NSH, "3"], "nsh", "# accept"],
])("the hook, %s, loads no ssh2", async (_name, argv, feature, reply) => {
  const r = await run(argv, hookInput(feature));
  expect(r.err.split("\n")).toContain(reply);
  expect(loadedSsh2()).toBe(false);
});

test("the job agent loads no ssh2", async () => {
  const r = await run([NSH, "__agent"]); // no job directory: it says how to call it
  expect(r.err).toContain("usage: nsh __agent JOBDIR");
  expect(loadedSsh2()).toBe(false);
});
