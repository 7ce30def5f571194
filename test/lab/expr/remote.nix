# A derivation for remote builds (build-remote, ssh://, our hook).
# Args:
#   salt   string, default "0"; use a fresh one so the path is not valid yet
#   sleep  string, seconds the builder sleeps, default "0"
#   system default builtins.currentSystem
# Result: $out contains "remote <salt>"; the builder prints "building remote <salt>".
{ salt ? "0", sleep ? "0", system ? builtins.currentSystem }:
builtins.derivation {
  name = "remote-${salt}";
  inherit system;
  builder = "/bin/sh";
  args = [ "-c" "echo building remote ${salt}; /bin/sleep ${sleep}; echo remote ${salt} > $out" ];
}
