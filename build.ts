// Builds dist/nsh (one self-contained executable) and dist/nix-sigstop (a symlink to it).
import fs from "node:fs";
import path from "node:path";

const outdir = path.join(import.meta.dir, "dist");
fs.mkdirSync(outdir, { recursive: true });
const outfile = path.join(outdir, "nsh");
// --bytecode needs ESM output because consola and citty use import.meta (bun.md §3).
// --splitting: each personality's modules become their own chunk, loaded when it is chosen, so a
// process no longer loads the whole bundle first (nix-sigstop --version 19 → 15 ms, the hook 25 → 20 ms).
const result = Bun.spawnSync(
  [process.execPath, "build", "--compile", "--splitting", "--minify", "--bytecode", "--format=esm", "--sourcemap=none", "--external", "cpu-features", path.join(import.meta.dir, "src/main.ts"), "--outfile", outfile],
  { stdio: ["inherit", "inherit", "inherit"] },
);
if (result.exitCode !== 0) process.exit(result.exitCode ?? 1);
const link = path.join(outdir, "nix-sigstop");
fs.rmSync(link, { force: true });
fs.symlinkSync("nsh", link);
console.log(`built ${outfile} and ${link}`);
