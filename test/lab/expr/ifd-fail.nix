# An IFD whose builder prints a line and exits 1, so evaluation fails with
# "builder for '...-ifd-fail-<salt>.drv' failed with exit code 1".
# Args:
#   salt   string, default "0"
#   system default builtins.currentSystem
# Result: never (evaluation error). The builder's line is
#   "ifd-fail: failing on purpose (salt <salt>)"
# nix eval -f ifd-fail.nix --argstr salt x value
{ salt ? "0", system ? builtins.currentSystem }:
let
  gen = builtins.derivation {
    name = "ifd-fail-${salt}";
    inherit system;
    builder = "/bin/sh";
    args = [ "-c" "echo 'ifd-fail: failing on purpose (salt ${salt})'; exit 1" ];
  };
in
{ value = (import gen).value; }
