# A Slurm build whose output is big: `mib` MiB of zeros, written on the node (no big input).
# Args: salt (string), mib (int).
{ salt ? "0", mib ? 400, system ? builtins.currentSystem }:
builtins.derivation {
  name = "big-out-${salt}";
  inherit system;
  builder = "/bin/sh";
  args = [ "-c" "echo building big-out; /bin/dd if=/dev/zero of=$out bs=1M count=${toString mib} 2>/dev/null" ];
  requiredSystemFeatures = [ "nsh" ];
}
