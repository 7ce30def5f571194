// Pure: which Nix we talk to, from its `--version` line, and what that implies.

export interface NixVersion {
  impl: "nix" | "lix";
  major: number;
  minor: number;
  patch: number;
  text: string;
}

/** "nix-store (Nix) 2.8.0", "nix (Lix, like Nix) 2.91.1", "nix (Nix) 2.35.2pre2026…" */
export function parseNixVersion(line: string): NixVersion {
  const m = /\((Nix|Lix[^)]*)\)\s+(\d+)\.(\d+)(?:\.(\d+))?/.exec(line);
  if (!m) throw new Error(`cannot tell the Nix version from '${line.trim().slice(0, 120)}'`);
  return {
    impl: m[1]!.startsWith("Lix") ? "lix" : "nix",
    major: Number(m[2]),
    minor: Number(m[3]),
    patch: Number(m[4] ?? 0),
    text: line.trim(),
  };
}

const atLeast = (v: NixVersion, major: number, minor: number) => v.major > major || (v.major === major && v.minor >= minor);

/**
 * NIX_HELD_LOCKS lets an import skip the output locks Nix holds for the build the hook runs
 * (nix-protocols.md §1.6). Nix removed it in 2.29; Lix kept it.
 */
export function honoursHeldLocks(v: NixVersion): boolean {
  return v.impl === "lix" || !atLeast(v, 2, 29);
}

/**
 * Nix ≥ 2.32 has the `external-builders` setting (Lix has not). The node's Nix of a job must build
 * the job's derivation itself: a nix.conf shared with the login host that lists nsh there would hand
 * the build back to `nsh external-builder` on the node (a second job, or a failure).
 */
export function knowsExternalBuilders(v: NixVersion): boolean {
  return v.impl === "nix" && atLeast(v, 2, 32);
}

/** How outputs get into a local store whose output locks Nix holds. */
/** restore-only: unpack the outputs where Nix expects them and leave registering to Nix (external builders). */
export type ImportMethod = "held-locks" | "restore-register" | "restore-only";

export function importMethod(v: NixVersion): ImportMethod {
  return honoursHeldLocks(v) ? "held-locks" : "restore-register";
}

/** How a failed build is meant to look to Nix: as a local build's failure of the same kind. */
export type HookFailure = "permanent" | "timed-out" | "other";

/**
 * The hook's exit status for a failed build (nix-protocols.md §1.5). Nix ≤ 2.28 and Lix map 100 to
 * PermanentFailure (TransientFailure for a fixed-output derivation, as for a local build), 101 to
 * TimedOut and any other status to MiscFailure, so nix-build exits 100 / 101 as it does for the
 * same failure built locally. Nix ≥ 2.29 makes every non-zero status MiscFailure and says "failed
 * with exit code N": 1 there, which reads like a builder's failure rather than a code to decode.
 */
export function hookFailureStatus(v: NixVersion | undefined, failure: HookFailure): number {
  if (v && v.impl === "nix" && atLeast(v, 2, 29)) return 1;
  return failure === "permanent" ? 100 : failure === "timed-out" ? 101 : 1;
}

/**
 * Nix 2.25–2.33 (not Lix) ignore `build-hook` in the system nix.conf: `nix`'s main resets it to the
 * default after reading the file (nix-protocols.md §2; fixed in 2.34.0 by 0e3a6203).
 */
export function ignoresSystemBuildHook(v: NixVersion): boolean {
  return v.impl === "nix" && v.major === 2 && v.minor >= 25 && v.minor <= 33;
}

/** Nix ≥ 2.32 (not Lix) has the experimental `external-builders`, the way around the build hook. */
export const hasExternalBuilders = (v: NixVersion): boolean => v.impl === "nix" && atLeast(v, 2, 32);
