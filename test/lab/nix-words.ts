// What Nix says and exits with when a build fails, per Nix version, for the tests that run on every
// suite (NSH_LAB_SUITE): the user-visible behaviour is the same (the build fails, Nix names it and
// why), the words and statuses are Nix's own and changed between releases. Seen here: 2.8.0
// (bookworm), 2.26.3 (trixie), 2.34.8 (sid). Pure; `v` is a lab's nixVersionNumbers.

type Version = readonly number[];

const atLeast = (v: Version, major: number, minor: number): boolean =>
  (v[0] ?? 0) > major || ((v[0] ?? 0) === major && (v[1] ?? 0) >= minor);

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * Whether Nix reads the hook's status 100 / 101 as a permanent failure / a timeout (≤ 2.28). From 2.29
 * every status is a MiscFailure, "builder failed with exit code N" (nix-protocols.md §1.5), so nsh
 * exits 1 there and nix-build says 1 where a local timeout says 101.
 */
export const hookStatusMapped = (v: Version): boolean => !atLeast(v, 2, 29);

/** nix-build's status after nsh reported a timed-out build: Nix's TimedOut (101) where it reads the status. */
export const hookTimeoutExit = (v: Version, via: "daemon" | "local store"): number =>
  via === "local store" && hookStatusMapped(v) ? 101 : 1;

/** The status a hook that timed out reports, in Nix's "failed with exit code N" (only through the daemon on ≤ 2.28). */
export const hookTimeoutStatus = (v: Version): number => (hookStatusMapped(v) ? 101 : 1);

/** Nix's words for a builder (or build hook) of `drv` that exited with `code` (`drv` as printed). */
export function builderFailed(v: Version, drv: string, code: number): RegExp {
  const d = escape(drv);
  return atLeast(v, 2, 29)
    ? new RegExp(`Cannot build '${d}'\\.\\n\\s*Reason: builder failed with exit code ${code}\\.`)
    : new RegExp(`builder for '${d}' failed with exit code ${code}\\b`);
}

/**
 * Nix's words for a build of `drv` it timed out after `seconds` (`silence`: max-silent-time). Up to
 * 2.28: "building of '<drv>!out' from .drv file timed out after N seconds [of silence]" (2.26 writes
 * `^out`); 2.34 says only "timed out after N seconds", for both settings.
 */
export function timedOut(v: Version, drv: string, seconds: number, silence: boolean): RegExp {
  if (atLeast(v, 2, 29)) return new RegExp(`timed out after ${seconds} seconds\\b`);
  const tail = silence ? " of silence" : "\\n";
  return new RegExp(`building of '${escape(drv)}[!^]out' from [a-z.\\- ]+ timed out after ${seconds} seconds${tail}`);
}

/** A max-silent-time kill in the words of a Nix of version `v` (2.34 does not say "of silence"). */
export const silenceWords = (v: Version, seconds: number): RegExp =>
  new RegExp(`timed out after ${seconds} seconds${atLeast(v, 2, 29) ? "\\b" : " of silence"}`);
