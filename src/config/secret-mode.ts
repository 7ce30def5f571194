// Secrets kept in files others may read: the inline `slurm-jwt-token` of an nsh.conf (often
// /etc/nix/nsh.conf, mode 0644) is anyone's cluster account. Pure but for `inlineSecretWarnings`'
// stat of the file each setting came from (node:fs loaded only then: the hook reads nsh.conf
// before its first answer, and loading node:fs costs start-up CPU).
import { builtinModule } from "../sys/libc.ts";

/** Settings whose value is a credential. */
export const SECRET_SETTINGS = ["slurm-jwt-token"] as const;

/** "group and others" for a mode that lets them read; null when only the owner may. */
export function readersBeyondOwner(mode: number): string | null {
  const who = [...(mode & 0o040 ? ["group"] : []), ...(mode & 0o004 ? ["others"] : [])];
  return who.length ? who.join(" and ") : null;
}

/** The warning for secret `name` set at `origin` ("file:line") in a file of `mode`; null when private. */
export function secretInReadableFile(name: string, origin: string, mode: number): string | null {
  const who = readersBeyondOwner(mode);
  if (!who) return null;
  const file = origin.replace(/:\d+$/, "");
  const octal = (mode & 0o777).toString(8).padStart(4, "0");
  return (
    `${origin}: '${name}' is a secret, but ${file} is readable by ${who} (mode ${octal}); ` +
    `move it to slurm-jwt-token-file (chmod 600) or chmod 600 ${file}`
  );
}

/** Warnings for secrets set in files others may read (origins: setting → "file:line"). */
export function inlineSecretWarnings(origins: ReadonlyMap<string, string>, config: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const name of SECRET_SETTINGS) {
    const origin = origins.get(name);
    if (!origin || !String(config[name] ?? "").trim()) continue;
    let mode: number;
    try {
      const { statSync } = builtinModule<typeof import("node:fs")>("node:fs");
      mode = statSync(origin.replace(/:\d+$/, "")).mode;
    } catch {
      continue;
    }
    const w = secretInReadableFile(name, origin, mode);
    if (w) out.push(w);
  }
  return out;
}
