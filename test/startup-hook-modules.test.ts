// Expected: the build hook's way to its first answer (main.ts imports cli/hook.ts, which brings the
// runner) loads only the modules that answer needs: no node:fs, node:path, node:os, node:tty or the
// bun:ffi module (each costs start-up CPU in a compiled Bun: node:fs alone ~2 ms, 40% of a hello
// world; libc comes through Bun.FFI instead), no citty/consola/ssh2, and none of the accepted build's,
// a scheduler's, copy's or nix-sigstop's modules (they are imported when used). Seen without timing:
// the bundle is built as build.ts builds it (split into chunks, one per dynamic import) but not
// minified, and the chunks the hook entry imports statically, transitively, are exactly what ESM
// loads for it; the `// src/…` markers in them name their modules.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

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
