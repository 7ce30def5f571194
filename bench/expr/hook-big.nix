# Workload of bench/hook-big.ts: one build with a big input already in the local store and an output
# as big, requiring feature "nsh" (so only nsh or a builder offering it can build it).
# Args: salt (string), src (string: a store path, added beforehand with nix-store --add).
# Result: $out = a copy of src.
{ salt ? "0", src, system ? builtins.currentSystem }:
builtins.derivation {
  name = "big-${salt}";
  inherit system;
  big = builtins.storePath src;
  builder = "/bin/sh";
  args = [ "-c" "/bin/cat $big > $out" ];
  requiredSystemFeatures = [ "nsh" ];
}
