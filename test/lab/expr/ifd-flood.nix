# An IFD whose builder floods its log: `lines` lines of ~100 bytes on stdout before it writes the
# imported file. The daemon relays every log line to the nix client, so while nix is stopped the
# nix-sigstop proxy sees a flood it must buffer within its bound.
# Args: salt (string), lines (string, default "500000" ≈ 50 MB)
{ salt ? "0", lines ? "500000" }:
let
  gen = builtins.derivation {
    name = "ifd-flood-${salt}";
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" "/usr/bin/yes 'flood flood flood flood flood flood flood flood flood flood flood flood flood flood flood flood' | /usr/bin/head -n ${lines}; echo '{ value = \"flood-${salt}\"; }' > $out" ];
  };
in (import gen).value
