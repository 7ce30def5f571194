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
