// Where the JWT for slurmrestd comes from (slurm-jwt-token, its file, or $SLURM_JWT), with a warning
// when the file is readable by others. Kept apart from the REST client so it stays small.
import * as fs from "node:fs";
import * as os from "node:os";
import type { NshConfig } from "../config/nsh-conf.ts";
import { SchedulerError } from "./scheduler.ts";

export interface JwtToken {
  token: string;
  source: string;
  warnings: string[];
}

/**
 * The JWT from slurm-jwt-token, else the file named by slurm-jwt-token-file (warning when group
 * or others may read it), else $SLURM_JWT. A file may hold `scontrol token`'s "SLURM_JWT=…" line.
 */
export function jwtToken(config: Pick<NshConfig, "slurm-jwt-token" | "slurm-jwt-token-file">, env: Record<string, string | undefined> = process.env): JwtToken {
  const inline = config["slurm-jwt-token"].trim();
  if (inline) return { token: inline, source: "slurm-jwt-token", warnings: [] };
  const file = config["slurm-jwt-token-file"].trim();
  if (file) {
    let text: string;
    let mode: number;
    try {
      mode = fs.statSync(file).mode;
      text = fs.readFileSync(file, "utf8");
    } catch (e) {
      throw new SchedulerError("config", `slurm-jwt-token-file ${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
    }
    const token = text.trim().replace(/^SLURM_JWT=/, "").trim();
    if (!token) throw new SchedulerError("config", `slurm-jwt-token-file ${file} is empty`);
    const warnings =
      (mode & 0o044) !== 0
        ? [`slurm-jwt-token-file ${file} is readable by ${readers(mode)} (mode ${octal(mode)}); chmod 600 it`]
        : [];
    return { token, source: `slurm-jwt-token-file ${file}`, warnings };
  }
  const fromEnv = env.SLURM_JWT?.trim();
  if (fromEnv) return { token: fromEnv, source: "SLURM_JWT", warnings: [] };
  throw new SchedulerError("config", "no JWT for slurmrestd: set slurm-jwt-token or slurm-jwt-token-file in nsh.conf, or SLURM_JWT in the environment");
}

/** The user nsh runs as, for X-SLURM-USER-NAME when neither slurm-user nor the token names one. */
export function safeUserName(): string {
  try {
    return os.userInfo().username;
  } catch {
    return process.env.USER ?? "nobody";
  }
}

const readers = (mode: number) => (mode & 0o040 ? ["group"] : []).concat(mode & 0o004 ? ["others"] : []).join(" and ");
const octal = (mode: number) => (mode & 0o777).toString(8).padStart(4, "0");
