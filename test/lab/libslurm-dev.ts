// slurm-native's tests need Slurm's C headers and libslurm.so (Debian: libslurm-dev) and a C
// compiler; the Slurm lab itself does not. Installed once when missing.
import * as fs from "node:fs";
import { aptInstall } from "./apt.ts";

export async function ensureLibslurmDev(): Promise<void> {
  const need: string[] = [];
  if (!fs.existsSync("/usr/include/slurm/slurm.h")) need.push("libslurm-dev");
  if (!Bun.which("cc")) need.push("gcc");
  if (need.length > 0) await aptInstall(need);
}

/**
 * True (and says why) when NSH_LAB_SUITE names a Debian root: a scheduler test that loads libslurm in
 * this process (or a bun child on the host) gets the host's 22.05 library, which a 24.11/26.05
 * slurmctld refuses, and the root's library needs the root's glibc. slurm-native meets each
 * release's libslurm end to end in test/hook-slurm/backend-slurm-native.test.ts, where nsh runs inside the root.
 */
export function needsHostSlurm(file: string): boolean {
  const suite = (process.env.NSH_LAB_SUITE ?? "").trim();
  if (suite === "" || suite === "bookworm") return false;
  console.log(`[${file}] skipped on ${suite}: it loads the host's libslurm (see needsHostSlurm)`);
  return true;
}
