# A derivation whose name and content come from an IFD, so `nix build` /
# `nix-build` first builds the generator during evaluation, then the result.
# Args:
#   salt   string, default "0"
#   sleep  string, seconds the IFD generator sleeps, default "0"
#   system default builtins.currentSystem
# Result: derivation "build-ifd-<salt>-ifd-built-<salt>"; $out contains that value.
# nix-build build-ifd.nix --argstr salt $RANDOM --no-out-link
{ salt ? "0", sleep ? "0", system ? builtins.currentSystem }:
let
  ifd = import ./ifd-sleep.nix { inherit salt sleep system; tag = "ifd-built"; };
in
builtins.derivation {
  name = "build-ifd-${salt}-${ifd.value}";
  inherit system;
  builder = "/bin/sh";
  args = [ "-c" "echo ${ifd.value} ${toString ifd.n} > $out" ];
}
