# Two import-from-derivation builds with a growing evaluator heap, for the memory benchmark.
# Stage 1 forces a list of `listSize` integers (kept alive to the end), then waits for IFD 1.
# Stage 2 forces a second list, `growth` times as long, then waits for IFD 2. The result uses both
# lists, so the client holds the first list across both waits and both lists across the second.
# Args:
#   salt     string; a new salt forces new builds
#   sleep    string, seconds each IFD builder sleeps, default "5"
#   listSize int, elements of the first list, default 4500000 (about 0.5 GB of client RSS on Nix 2.8)
#   growth   int, the second list is growth * listSize long, default 2
# Result: an integer (the sum of both lists plus the two IFDs' `n`).
{ salt, sleep ? "5", listSize ? 4500000, growth ? 2, system ? builtins.currentSystem }:
let
  ifd = k: import ../../test/lab/expr/ifd-sleep.nix { inherit sleep system; salt = "${salt}-${toString k}"; tag = "bench"; };
  big1 = builtins.genList (i: i * 2) listSize;
  sum1 = builtins.foldl' builtins.add 0 big1;
  one = ifd 1;
  big2 = builtins.seq one.n (builtins.genList (i: i * 3) (listSize * growth));
  sum2 = builtins.foldl' builtins.add 0 big2;
  two = ifd 2;
  last = l: builtins.elemAt l (builtins.length l - 1);
in
builtins.seq sum1 (builtins.seq one.n (builtins.seq sum2 (builtins.seq two.n (sum1 + sum2 + one.n + two.n + last big1 + last big2))))
