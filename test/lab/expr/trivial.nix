# The smallest build: writes "hi <salt>" to $out. No nixpkgs; builder /bin/sh.
# Args:
#   salt   string, default "0"; change it to get a fresh (unbuilt) derivation
#   system default builtins.currentSystem (pass --argstr system ... under pure eval)
# nix-build trivial.nix --argstr salt $RANDOM --no-out-link
{ salt ? "0", system ? builtins.currentSystem }:
builtins.derivation {
  name = "trivial-${salt}";
  inherit system;
  builder = "/bin/sh";
  args = [ "-c" "echo hi ${salt} > $out" ];
}
