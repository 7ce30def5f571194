# n independent derivations for the cluster (no one depends on another), so a nix-build -j n asks
# the build hook about all of them at once. Each requires the system feature "nsh", which the lab's
# nix.conf does not offer, so only nsh (Slurm) can build them.
# Args:
#   salt   string, default "0"
#   n      int, default 8
#   system default builtins.currentSystem
# Result: a list of n derivations "wide-<salt>-<i>"; $out = "wide <i> <salt>".
{ salt ? "0", n ? 8, system ? builtins.currentSystem }:
builtins.genList (i: builtins.derivation {
  name = "wide-${salt}-${toString i}";
  inherit system;
  builder = "/bin/sh";
  args = [ "-c" "echo wide ${toString i} ${salt} > $out" ];
  requiredSystemFeatures = [ "nsh" ];
}) n
