# A closure where nsh takes some builds and Nix's own hook the others.
#   on-slurm  requires "nsh"      (nsh takes it: a Slurm job)
#   on-ssh    requires "sshonly"  (nsh declines; its fallback, build-remote, sends it to an ssh builder)
#   top       requires "nsh" and reads both (a Slurm job whose inputs came from two places)
# Args: salt (string). Result: $out = "top on-slurm-<salt> on-ssh-<salt>".
{ salt ? "0", system ? builtins.currentSystem }:
let
  mk = name: features: script: extra: builtins.derivation ({
    name = "${name}-${salt}";
    inherit system;
    builder = "/bin/sh";
    args = [ "-c" "echo building ${name}; ${script}" ];
    requiredSystemFeatures = features;
  } // extra);
  a = mk "on-slurm" [ "nsh" ] "echo on-slurm-${salt} > $out" { };
  b = mk "on-ssh" [ "sshonly" ] "echo on-ssh-${salt} > $out" { };
in
mk "top" [ "nsh" ] "read x < $a; read y < $b; echo top $x $y > $out" { inherit a b; }
