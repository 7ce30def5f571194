# An evaluation with no IFD that still does some work: a big attribute set,
# and a derivation that is instantiated (its drvPath is computed) but never
# built. Useful as "evaluation without builds" in nix-sigstop tests.
# Args:
#   salt   string, default "0"
#   size   int, attributes in the generated set, default 200000
#   system default builtins.currentSystem
# Result: { count = size; sum = <sum of values>; drvPath = "..."; outPath = "..."; }
# nix eval -f noifd.nix --json drvPath   (writes the .drv; nothing is built)
# (2.8: `nix eval -f` only auto-calls the function when given an attribute path)
{ salt ? "0", size ? 200000, system ? builtins.currentSystem }:
let
  big = builtins.listToAttrs (builtins.genList (i: { name = "a${toString i}"; value = i; }) size);
  names = builtins.attrNames big;
  sum = builtins.foldl' (acc: n: acc + big.${n}) 0 names;
  drv = builtins.derivation {
    name = "noifd-${salt}";
    inherit system;
    builder = "/bin/sh";
    args = [ "-c" "echo ${toString sum} > $out" ];
  };
in
{
  count = builtins.length names;
  inherit sum;
  inherit (drv) drvPath outPath;
}
