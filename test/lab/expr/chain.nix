# Two-level chain: top depends on dep. Both require the system feature "nsh",
# which the lab's nix.conf does not offer, so neither can be built locally:
# the build hook is asked about dep first, then about top.
# Args:
#   salt   string, default "0"
#   sleep  string, seconds each builder sleeps, default "0"
#   system default builtins.currentSystem
# Result: derivation "top-<salt>"; $out = "top <contents of dep>".
{ salt ? "0", sleep ? "0", system ? builtins.currentSystem }:
let
  mk = name: script: extra: builtins.derivation ({
    name = "${name}-${salt}";
    inherit system;
    builder = "/bin/sh";
    args = [ "-c" "echo building ${name}; /bin/sleep ${sleep}; ${script}" ];
    requiredSystemFeatures = [ "nsh" ];
  } // extra);
  dep = mk "dep" "echo dep-${salt} > $out" { };
in
mk "top" "read d < $dep; echo top $d > $out" { inherit dep; }
