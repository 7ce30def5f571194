# Import-from-derivation: evaluating `value` needs a build (the generator
# sleeps, then writes a .nix file that is imported).
# Args:
#   salt   string, default "0"; a new salt forces a new build
#   sleep  string, seconds the generator sleeps, default "0"
#   tag    string, default "ifd"; part of the drv name and of `value`
#   system default builtins.currentSystem
# Result: { value = "<tag>-<salt>"; n = 42; drvPath = <generator .drv>; }
# nix eval -f ifd-sleep.nix --argstr salt x --argstr sleep 2 --raw value
#   (2.8: `nix eval -f` only auto-calls the function when given an attribute path)
# nix-instantiate --eval --read-write-mode ifd-sleep.nix -A value   (2.8's --eval is read-only otherwise)
{ salt ? "0", sleep ? "0", tag ? "ifd", system ? builtins.currentSystem }:
let
  gen = builtins.derivation {
    name = "${tag}-gen-${salt}";
    inherit system;
    builder = "/bin/sh";
    args = [ "-c" "/bin/sleep ${sleep}; echo '{ value = \"${tag}-${salt}\"; n = 42; }' > $out" ];
  };
  imported = import gen;
in
{
  inherit (imported) value n;
  drvPath = gen.drvPath;
}
