# n independent IFDs. Nix 2.8 builds them one after another during
# evaluation (each is its own buildPaths call, so its own hook process).
# Args:
#   salt   string, default "0"
#   sleep  string, seconds each generator sleeps, default "0"
#   n      int, number of IFDs, default 3
#   system default builtins.currentSystem
# Result: { values = [ "multi-<salt>-0" ... ]; sum = 42 * n; }
# nix eval -f ifd-multi.nix --argstr salt x --arg n 3 --json sum
# (2.8: `nix eval -f` only auto-calls the function when given an attribute path)
{ salt ? "0", sleep ? "0", n ? 3, system ? builtins.currentSystem }:
let
  one = i: import ./ifd-sleep.nix { inherit sleep system; salt = "${salt}-${toString i}"; tag = "multi"; };
  all = builtins.genList one n;
in
{
  values = map (x: x.value) all;
  sum = builtins.foldl' (acc: x: acc + x.n) 0 all;
}
