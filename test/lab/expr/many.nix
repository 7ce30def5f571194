# A closure of many small paths: n leaves, and a top whose output names every leaf (so it
# references them all), plus one leaf of `bigMiB` MiB of random-ish data when bigMiB > 0.
# Args: salt (string), n (int, default 20), bigMiB (int, default 0)
# nix-build many.nix --argstr salt x --arg n 500
{ salt ? "0", n ? 20, bigMiB ? 0, system ? builtins.currentSystem }:
let
  leaf = i: builtins.derivation {
    name = "leaf-${salt}-${toString i}";
    inherit system;
    builder = "/bin/sh";
    args = [ "-c" "echo leaf ${toString i} ${salt} > $out" ];
  };
  leaves = builtins.genList leaf n;
  big = builtins.derivation {
    name = "big-${salt}";
    inherit system;
    builder = "/bin/sh";
    args = [ "-c" "/usr/bin/head -c ${toString bigMiB}M /dev/urandom > $out" ];
  };
in builtins.derivation {
  name = "top-${salt}";
  inherit system;
  builder = "/bin/sh";
  leaves = leaves ++ (if bigMiB > 0 then [ big ] else [ ]);
  args = [ "-c" "echo $leaves > $out" ];
}
