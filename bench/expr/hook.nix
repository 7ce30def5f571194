# Workloads of bench/hook.ts: trivial derivations (builder /bin/sh, no nixpkgs), each requiring one
# system feature.
# Args:
#   salt     string; a fresh one gives fresh (unbuilt) derivations
#   n        int, number of independent leaves for `all` and `leaves`, default 50
#   feature  string, the feature every derivation requires, default "nsh" (only nsh or a builder
#            offering it can build them); "" requires none (a local build); "benchmark" is one
#            Nix's default system-features has, so the lab builds it locally when the hook declines
#   system   default builtins.currentSystem
# Attributes:
#   one      one derivation; $out = "one <salt>"
#   leaves   the n independent derivations (a list; nix-build builds them all)
#   all      an aggregate of the n leaves (it requires the feature too); $out = the sum 0 + … + (n-1)
{ salt ? "0", n ? 50, feature ? "nsh", system ? builtins.currentSystem }:
let
  features = if feature == "" then { } else { requiredSystemFeatures = [ feature ]; };
  mk = name: script: extra: builtins.derivation ({
    name = "${name}-${salt}";
    inherit system;
    builder = "/bin/sh";
    args = [ "-c" script ];
  } // features // extra);
  leaves = builtins.genList (i: mk "leaf${toString i}" "echo ${toString i} > $out" { }) n;
in
{
  one = mk "one" "echo one ${salt} > $out" { };
  inherit leaves;
  all = mk "all" "s=0; for d in $deps; do read x < $d; s=$((s + x)); done; echo $s > $out" { deps = leaves; };
}
