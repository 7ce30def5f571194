// Running the built nsh copy against a lab, and building test closures.
import path from "node:path";
import type { NixLab } from "../lab/nix.ts";

export const NSH = path.join(import.meta.dir, "..", "..", "dist", "nsh");

export async function nshCopy(lab: NixLab, args: string[], env: Record<string, string> = {}) {
  const p = Bun.spawn([NSH, "copy", ...args], { env: { ...lab.env, NSH_STATE_DIR: path.join(lab.root, "nsh-state"), ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, stdout, stderr };
}

/** Builds `n` small leaves and a `bigMiB` one under a fresh top path; returns the top path. */
export async function buildMany(lab: NixLab, n: number, bigMiB: number, store?: string): Promise<string> {
  const salt = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const r = await lab.run(["nix-build", ...(store ? ["--store", store] : []), lab.expr("many"), "--argstr", "salt", salt, "--arg", "n", String(n), "--arg", "bigMiB", String(bigMiB), "--no-out-link"], { timeoutMs: 120000 });
  if (r.code !== 0) throw new Error(`building many.nix failed: ${r.stderr}`);
  return r.stdout.trim();
}
