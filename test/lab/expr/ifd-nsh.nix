# Import-from-derivation for the cluster: the generator requires the system
# feature "nsh" (the lab's nix.conf does not offer it), so with nsh as build
# hook it is built as a Slurm job while evaluation waits for it.
# Args:
#   salt   string, default "0"; a new salt forces a new build
#   sleep  string, seconds the generator sleeps, default "0"
#   system default builtins.currentSystem
# Result: { value = "nsh-ifd-<salt>"; n = 42; drvPath = <generator .drv>; }
# nix eval --impure --expr 'import ./ifd-nsh.nix { salt = "x"; }' --json
{ salt ? "0", sleep ? "0", system ? builtins.currentSystem }:
let
  gen = builtins.derivation {
    name = "nsh-ifd-gen-${salt}";
    inherit system;
    builder = "/bin/sh";
    args = [ "-c" "echo generating on the cluster; /bin/sleep ${sleep}; echo '{ value = \"nsh-ifd-${salt}\"; n = 42; }' > $out" ];
    requiredSystemFeatures = [ "nsh" ];
  };
  imported = import gen;
in
{
  inherit (imported) value n;
  drvPath = gen.drvPath;
}
