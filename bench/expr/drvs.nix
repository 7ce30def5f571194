# Many derivations instantiated and none built: every drvPath makes the client write a .drv through
# the daemon (addTextToStore), so the evaluation talks to the daemon a lot and never imports from a
# derivation. Used by the overhead benchmark.
# Args:
#   salt string; a new salt makes every .drv new
#   n    int, number of derivations, default 3000
# Result: the total length of all drvPaths (an integer), so every one is forced.
{ salt, n ? 3000, system ? builtins.currentSystem }:
let
  drv = i: builtins.derivation {
    name = "bench-${salt}-${toString i}";
    inherit system;
    builder = "/bin/sh";
    args = [ "-c" "echo ${toString i} > $out" ];
  };
  paths = builtins.genList (i: (drv i).drvPath) n;
in
builtins.stringLength (builtins.concatStringsSep "" paths)
