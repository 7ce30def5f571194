# One builder script, built either on the cluster or locally: with cluster = true (the default) it
# requires the system feature "nsh", which the lab's nix.conf does not offer, so only nsh (Slurm)
# can build it; with cluster = false the local Nix builds it. For comparing the two outcomes.
# Args:
#   salt    string, default "0"
#   script  string, the builder's shell script (must write $out to succeed)
#   cluster bool, default true
#   system  default builtins.currentSystem
# Result: derivation "same-script-<salt>".
{ salt ? "0", script, cluster ? true, system ? builtins.currentSystem }:
builtins.derivation ({
  name = "same-script-${salt}";
  inherit system;
  builder = "/bin/sh";
  args = [ "-c" script ];
} // (if cluster then { requiredSystemFeatures = [ "nsh" ]; } else { }))
