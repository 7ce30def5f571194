# One derivation for the cluster: it requires the system feature "nsh", which
# the lab's nix.conf does not offer, so only nsh (Slurm) can build it.
# No nixpkgs; builder /bin/sh.
# Args:
#   salt    string, default "0"; a new salt gives a fresh (unbuilt) derivation
#   script  string, the builder's shell script (must write $out to succeed)
#   sleep   string, seconds to sleep before the script, default "0"
#   cpus    int, cpus_per_task in extraSlurmParams, default 0 (not set)
#   params  string, raw extraSlurmParams text (wins over the JSON built from
#           salt/cpus when not ""); "none" sets no extraSlurmParams at all
#   attr    the attribute params go into, default "extraSlurmParams" (e.g.
#           "slurmNativeConstraints" for slurm-native)
#   system  default builtins.currentSystem
# Result: derivation "job-<salt>"; extraSlurmParams is, unless params is given,
#   builtins.toJSON { comment = "nsh-test-<salt>"; cpus_per_task = cpus; }
#   (cpus_per_task only when cpus > 0).
{ salt ? "0", script ? "echo job ${salt} > $out", sleep ? "0", cpus ? 0, params ? "", attr ? "extraSlurmParams", system ? builtins.currentSystem }:
let
  fromArgs = builtins.toJSON ({ comment = "nsh-test-${salt}"; } // (if cpus > 0 then { cpus_per_task = cpus; } else { }));
  extra = if params == "none" then { } else { ${attr} = if params == "" then fromArgs else params; };
in
builtins.derivation ({
  name = "job-${salt}";
  inherit system;
  builder = "/bin/sh";
  args = [ "-c" "/bin/sleep ${sleep}; ${script}" ];
  requiredSystemFeatures = [ "nsh" ];
} // extra)
