// Builds dist/nsh (one self-contained executable) and dist/nix-sigstop (a symlink to it).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const outdir = path.join(import.meta.dir, "dist");
fs.mkdirSync(outdir, { recursive: true });
const outfile = path.join(outdir, "nsh");
// A compiled Bun executable reads .env and bunfig.toml (preload = code it runs) from the directory it is
// started in unless told not to: nsh and nix-sigstop run inside whatever repository a user is in, so none of
// that may load. tsconfig.json and package.json are off by default; said explicitly so a new default cannot
// turn them on.
const NO_AUTOLOAD = [
  "--no-compile-autoload-dotenv",
  "--no-compile-autoload-bunfig",
  "--no-compile-autoload-tsconfig",
  "--no-compile-autoload-package-json",
];
// `new Worker(new URL("./x.ts", import.meta.url))` in the binary finds x.ts only when it was built in.
const WORKERS = ["src/schedulers/slurm-native-worker.ts"];
// --bytecode-order: the bytecode the hook's way to its first answer uses is laid out together at the front
// (profiles recorded by scripts/bytecode-order.ts; ~0.3 ms of CPU per hook start, bench/README.md "### startup").
// bench/startup.ts builds its hello world with a profile of its own run.
const ORDER = ["hook-decline.txt", "hook-accept.txt"].map((f) => path.join(import.meta.dir, "bytecode-order", f));
const BYTECODE_ORDER = ORDER.every((f) => fs.existsSync(f)) ? [`--bytecode-order=${ORDER.join(",")}`] : [];
// --bytecode needs ESM output because consola and citty use import.meta (bun.md §3).
// --splitting: each personality's modules become their own chunk, loaded when it is chosen, so a
// process no longer loads the whole bundle first (nix-sigstop --version 19 → 15 ms, the hook 25 → 20 ms).
const result = Bun.spawnSync(
  [
    process.execPath, "build", "--compile", ...NO_AUTOLOAD, "--splitting", "--minify", "--bytecode", ...BYTECODE_ORDER,
    "--format=esm", "--sourcemap=none", "--external", "cpu-features", path.join(import.meta.dir, "src/main.ts"),
    // Workers are entry points of their own, or the binary has no code to start them with (bun.md).
    ...WORKERS.map((w) => path.join(import.meta.dir, w)), "--outfile", outfile,
  ],
  { stdio: ["inherit", "inherit", "inherit"] },
);
if (result.exitCode !== 0) process.exit(result.exitCode ?? 1);
const link = path.join(outdir, "nix-sigstop");
fs.rmSync(link, { force: true });
fs.symlinkSync("nsh", link);
assertNoAutoload(outfile);
console.log(`built ${outfile} and ${link}`);

/**
 * `bun build` ignores flags it does not know, so a Bun older than the --no-compile-autoload-* flags (a
 * distribution's, say) would build a binary that runs a directory's bunfig.toml preload: run the binary in such
 * a directory and refuse to finish the build if it did.
 */
function assertNoAutoload(binary: string): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-build-autoload-"));
  try {
    const marker = path.join(dir, "preload-ran");
    fs.writeFileSync(path.join(dir, "preload.ts"), `require("node:fs").writeFileSync(${JSON.stringify(marker)}, "");\n`);
    fs.writeFileSync(path.join(dir, "bunfig.toml"), `preload = ["./preload.ts"]\n`);
    fs.writeFileSync(path.join(dir, ".env"), "NSH_AUTOLOAD_PROBE=1\n");
    const probe = Bun.spawnSync([binary, "--version"], { cwd: dir, stdio: ["ignore", "pipe", "inherit"] });
    const problems = [
      probe.exitCode !== 0 && `${binary} --version exited ${probe.exitCode}`,
      fs.existsSync(marker) && "it ran the preload named by the bunfig.toml of the directory it was started in",
    ].filter(Boolean);
    if (problems.length) {
      console.error(`build.ts: ${problems.join("; ")}: this Bun (${Bun.version}) may not know ${NO_AUTOLOAD.join(" ")}`);
      fs.rmSync(binary, { force: true });
      process.exit(1);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
