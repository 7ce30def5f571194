// Records which bytecode the hook's way to its first answer uses, for build.ts's --bytecode-order: Bun then
// lays that bytecode out together at the front of the executable, so a hook start loads less (bench/README.md,
// "### startup"). Run after a build: `bun build.ts && bun scripts/bytecode-order.ts && bun build.ts`.
// A profile from an older build still applies (functions it does not know are laid out after it), so
// re-recording is needed only when the hook's start-up path changed much.
// The hook is run as bench/startup.ts runs it: Nix's settings, one `try` it declines or one it accepts, EOF.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { settingsBlob } from "../bench/startup.ts";
import { encodeTry } from "../src/nix/hook-protocol.ts";

const REPO = path.join(import.meta.dir, "..");
export const ORDER_DIR = path.join(REPO, "bytecode-order");
const nsh = path.join(REPO, "dist", "nsh");
const system = `${process.arch === "arm64" ? "aarch64" : "x86_64"}-linux`;

/** The hook run once with `feature` asked for; Bun writes the functions it used to `out`. */
async function record(feature: string, out: string, scratch: string): Promise<void> {
  const conf = path.join(scratch, "nsh.conf");
  const env = { ...(process.env as Record<string, string>), NSH_CONF: conf, BUN_BYTECODE_ORDER_OUT: out };
  const p = Bun.spawn([nsh, "3"], { stdin: "pipe", stdout: "ignore", stderr: "pipe", env, cwd: "/" });
  p.stdin.write(settingsBlob().blob);
  const drvPath = `/nix/store/${"a".repeat(32)}-order.drv`;
  p.stdin.write(encodeTry({ amWilling: true, system, drvPath, requiredFeatures: [feature] }));
  await p.stdin.end();
  const [err, code] = await Promise.all([new Response(p.stderr).text(), p.exited]);
  const want = feature === "nsh" ? "# accept" : "# decline";
  if (!err.includes(want) || !fs.existsSync(out)) {
    throw new Error(`the hook (exit ${code}) did not answer ${want}: ${err.slice(-300)}`);
  }
}

if (import.meta.main) {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-bytecode-order-"));
  try {
    // Set up as bench/startup.ts sets it up: a hook that is not set up declines without deciding.
    fs.writeFileSync(path.join(scratch, "jwt"), "header.payload.signature\n", { mode: 0o600 });
    const conf = `slurm-state-dir = ${path.join(scratch, "cluster")}\n` +
      `slurm-jwt-token-file = ${path.join(scratch, "jwt")}\n`;
    fs.writeFileSync(path.join(scratch, "nsh.conf"), conf);
    fs.mkdirSync(ORDER_DIR, { recursive: true });
    // Most important first (build.ts passes them in this order): a declined try is the most common start.
    await record("benchmark", path.join(ORDER_DIR, "hook-decline.txt"), scratch);
    await record("nsh", path.join(ORDER_DIR, "hook-accept.txt"), scratch);
    console.log(`recorded ${ORDER_DIR}/hook-decline.txt and hook-accept.txt; run bun build.ts again to use them`);
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}
