# n independent derivations for the cluster, each taking a while (so builds overlap in time), one of
# which may fail: for pilot jobs with several slots (pilot-builds-per-job). Each requires the system
# feature "nsh", which the lab's nix.conf does not offer, so only nsh (Slurm) can build them.
# Args:
#   salt   string, default "0"
#   n      int, default 8
#   sleep  string, seconds each builder sleeps first, default "4"
#   fail   int, the index of the one derivation that exits 1 without output, default -1 (none)
#   system default builtins.currentSystem
# Result: a list of n derivations "slots-<salt>-<i>"; $out = "slots <i> <salt>".
{ salt ? "0", n ? 8, sleep ? "4", fail ? -1, system ? builtins.currentSystem }:
builtins.genList (i: builtins.derivation {
  name = "slots-${salt}-${toString i}";
  inherit system;
  builder = "/bin/sh";
  args = [ "-c" (if i == fail then "/bin/sleep ${sleep}; echo failing on purpose >&2; exit 1"
                 else "/bin/sleep ${sleep}; echo slots ${toString i} ${salt} > $out") ];
  requiredSystemFeatures = [ "nsh" ];
}) n
