# A Slurm build with a big input and a big output (for the bulk transfer path).
#   src  a file the test wrote (added to the local store, so the job's node does not have it)
#   top  requires "nsh" (a Slurm job): $out = src twice
# Args: salt (string), src (path).
{ salt ? "0", src, system ? builtins.currentSystem }:
builtins.derivation {
  name = "big-output-${salt}";
  inherit system;
  big = builtins.path { path = src; name = "big-input-${salt}"; };
  builder = "/bin/sh";
  args = [ "-c" "echo building big-output; /bin/cat $big $big > $out" ];
  requiredSystemFeatures = [ "nsh" ];
}
