// How Slurm's clients (sbatch & co., libslurm) show that slurmctld refused the caller's credential.
// A slurmctld that cannot verify a munge credential (this host's munge.key is not the cluster's, or
// slurm.conf's AuthInfo names another munged) logs "Protocol authentication error" and hangs up
// without an answer, so Slurm 22.05's clients only say "Zero Bytes were transmitted or received"
// (seen in the lab); a client that is told so says it in words, taken as they are.

const SAID = /Protocol authentication error|Invalid authentication credential/i;
const HUNG_UP = /Zero Bytes were transmitted or received/i;

/** Pure: nsh's words for a credential slurmctld refused, from a Slurm client's error text; null for anything else. */
export function slurmAuthRefusal(backend: "slurm-cli" | "slurm-native", text: string): string | null {
  const said = SAID.test(text);
  if (!said && !HUNG_UP.test(text)) return null;
  const why = said
    ? "slurmctld refused nsh's credential"
    : "slurmctld hung up without an answer, as it does for a credential it cannot verify";
  const check =
    "check that this host's munged has the cluster's munge.key and that slurm.conf's AuthInfo names its socket";
  return `${backend}: authentication failed: ${why}; ${check}`;
}
