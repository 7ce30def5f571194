// With ignore-scripts (see .npmrc), the npm `bun` package's postinstall has not put the platform
// binary in place yet: run it once. Plain Node, because Bun is what it installs.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bunDir = join(root, "node_modules", "bun");
const works = () => {
  try {
    execFileSync(join(root, "node_modules", ".bin", "bun"), ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
};
if (!existsSync(bunDir)) {
  console.error("ensure-bun: node_modules/bun is missing; run npm ci first");
  process.exit(1);
}
if (!works()) {
  execFileSync(process.execPath, ["install.js"], { cwd: bunDir, stdio: "inherit" });
  if (!works()) {
    console.error("ensure-bun: bun still does not run after its install script");
    process.exit(1);
  }
}
