# One derivation for a PBS cluster: it requires the system feature "nsh", which
# the lab's nix.conf does not offer, so only nsh can build it.
# Args:
#   salt       string, default "0"; a new salt gives a fresh (unbuilt) derivation
#   script     string, the builder's shell script (must write $out to succeed)
#   sleep      string, seconds to sleep before the script, default "0"
#   resources  string, raw pbsResources text, default {"walltime":"00:07:00","ncpus":"1"};
#              "none" sets no pbsResources at all
# Result: derivation "pbsjob-<salt>".
{ salt ? "0", script ? "echo job ${salt} > $out", sleep ? "0", resources ? "", system ? builtins.currentSystem }:
let
  text = if resources == "" then builtins.toJSON { walltime = "00:07:00"; ncpus = "1"; } else resources;
  extra = if resources == "none" then { } else { pbsResources = text; };
in
builtins.derivation ({
  name = "pbsjob-${salt}";
  inherit system;
  builder = "/bin/sh";
  args = [ "-c" "echo building pbsjob; /bin/sleep ${sleep}; ${script}" ];
  requiredSystemFeatures = [ "nsh" ];
} // extra)
