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

// Also expected: the build hook's way to its first answer (main.ts imports cli/hook.ts, which brings the
// runner) loads only the modules that answer needs: no node:fs, node:path, node:os, node:tty or the
// bun:ffi module (each costs start-up CPU in a compiled Bun: node:fs alone ~2 ms, 40% of a hello
// world; libc comes through Bun.FFI instead), no citty/consola/ssh2, and none of the accepted build's,
// a scheduler's, copy's or nix-sigstop's modules (they are imported when used). Seen without timing:
// the bundle is built as build.ts builds it (split into chunks, one per dynamic import) but not
// minified, and the chunks the hook entry imports statically, transitively, are exactly what ESM
// loads for it; the `// src/…` markers in them name their modules.
const REPO = path.join(import.meta.dir, "..");
let out: string;
let chunks: Map<string, string>;

beforeAll(() => {
  out = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-hook-modules-"));
  const argv = [process.execPath, "build", "--splitting", "--format=esm", "--target=bun", "--external", "cpu-features",
    "--outdir", out, path.join(REPO, "src/main.ts"), path.join(REPO, "src/schedulers/slurm-native-worker.ts")];
  const built = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  if (built.exitCode !== 0) throw new Error(`bun build failed: ${built.stderr.toString().slice(-1000)}`);
  const files = fs.readdirSync(out).filter((f) => f.endsWith(".js"));
  chunks = new Map(files.map((f) => [f, fs.readFileSync(path.join(out, f), "utf8")]));
});
afterAll(() => {
  if (out) fs.rmSync(out, { recursive: true, force: true });
});

/** The source modules and external imports of `entry`'s chunk and every chunk it imports statically. */
function staticClosure(entry: string): { modules: Set<string>; externals: Set<string> } {
  const modules = new Set<string>();
  const externals = new Set<string>();
  const seen = new Set<string>();
  const visit = (chunk: string) => {
    if (seen.has(chunk)) return;
    seen.add(chunk);
    const code = chunks.get(chunk);
    if (code === undefined) throw new Error(`no chunk ${chunk}`);
    for (const m of code.matchAll(/^\/\/ (src\/\S+\.ts)$/gm)) modules.add(m[1]!);
    for (const m of code.matchAll(/^import\s*(?:[^"';]*?\sfrom\s*)?"([^"]+)"/gm)) {
      if (m[1]!.startsWith("./")) visit(m[1]!.slice(2));
      else externals.add(m[1]!);
    }
  };
  visit(entry);
  return { modules, externals };
}

const chunkOf = (module: string) => [...chunks].find(([, code]) => code.includes(`\n// ${module}\n`))?.[0];

/** What the first answer needs: reading nsh.conf, deciding, answering (accept or decline), the fallback's shell. */
const NEEDED = new Set([
  "src/cli/hook.ts", "src/hook/runner.ts", "src/hook/decision.ts", "src/hook/executor.ts", "src/hook/hook-log.ts",
  "src/hook/readiness.ts", "src/hook/fallback.ts", "src/nix/hook-child.ts", "src/nix/hook-protocol.ts", "src/nix/wire.ts",
  "src/util/lines.ts", "src/util/self.ts", "src/util/size.ts", "src/config/nsh-conf.ts", "src/config/nixconf.ts",
  "src/config/secret-mode.ts", "src/schedulers/registry.ts", "src/schedulers/scheduler.ts", "src/schedulers/pbs-module.ts",
  "src/schedulers/slurm-cli-module.ts", "src/schedulers/slurm-native-module.ts", "src/schedulers/slurm-rest-module.ts",
  "src/sys/libc.ts", "src/sys/file.ts", "src/sys/posix-path.ts",
]);
const COSTLY = ["node:fs", "fs", "node:path", "path", "node:os", "os", "node:tty", "tty", "node:stream", "bun:ffi", "ssh2"]
  .concat(["citty", "consola"]);

test("main.ts alone (nsh --version) loads main.ts and self.ts, and imports cli/hook.ts for the hook", () => {
  const hookChunk = chunkOf("src/cli/hook.ts");
  expect(hookChunk).toBeDefined();
  expect(chunks.get("main.js")).toContain(`import("./${hookChunk}")`);
  expect(staticClosure("main.js").modules).toEqual(new Set(["src/util/self.ts", "src/main.ts"]));
});

test("the hook's way to its first answer loads only the modules it needs, and no costly built-in module", () => {
  // cli/hook.ts and the runner (one chunk closure today; two dynamic imports in older code)
  const modules = new Set<string>();
  const externals = new Set<string>();
  for (const m of ["src/cli/hook.ts", "src/hook/runner.ts"]) {
    const c = staticClosure(chunkOf(m)!);
    for (const x of c.modules) modules.add(x);
    for (const x of c.externals) externals.add(x);
  }
  expect([...modules].filter((m) => !NEEDED.has(m)).sort()).toEqual([]);
  expect([...externals].filter((x) => COSTLY.includes(x)).sort()).toEqual([]);
  // and the probe sees something: the runner and nsh.conf's reader are there
  expect(modules.has("src/hook/runner.ts") && modules.has("src/config/nsh-conf.ts")).toBe(true);
});

// Also expected: a hook starts a job reaper per build, and nearly all of them only hear "done" and exit. Such a
// reaper loads no scheduler, state database or job-record code: only the one whose hook died imports them
// (hook/reaper-cancel.ts). Before, each loaded them at start, ~20 MB of RSS more per reaper.
const REAPER_NEEDED = new Set([
  "src/hook/reaper.ts", "src/util/self.ts", "src/schedulers/registry.ts", "src/schedulers/scheduler.ts",
  "src/schedulers/pbs-module.ts", "src/schedulers/slurm-cli-module.ts", "src/schedulers/slurm-native-module.ts",
  "src/schedulers/slurm-rest-module.ts",
]);

test("a job reaper whose hook says done loads no scheduler, state database or job-record code", () => {
  const c = staticClosure(chunkOf("src/hook/reaper.ts")!);
  expect([...c.modules].filter((m) => !REAPER_NEEDED.has(m) && !NEEDED.has(m)).sort()).toEqual([]);
  expect(chunkOf("src/hook/reaper-cancel.ts")).not.toBe(chunkOf("src/hook/reaper.ts"));
});
