# Grows the evaluator's heap before an IFD, to observe client memory while the
# IFD builds (Boehm GC never returns it). listSize 10000000 is about 1.2 GB
# RSS, 5000000 about 600 MB (measured on Nix 2.8).
# Args:
#   salt     string, default "0"
#   sleep    string, seconds the IFD generator sleeps, default "5"
#   listSize int, elements of the list built before the IFD, default 10000000
#   system   default builtins.currentSystem
# nix eval -f ifd-mem.nix --argstr salt x --arg listSize 5000000 sum
# Result: { sum = <sum of 2i for i < listSize>; len = <string length>; value = "mem-<salt>"; }
{ salt ? "0", sleep ? "5", listSize ? 10000000, system ? builtins.currentSystem }:
let
  big = builtins.genList (i: i * 2) listSize;
  sum = builtins.foldl' builtins.add 0 big; # forces the whole list before the IFD
  ifd = import ./ifd-sleep.nix { inherit salt sleep system; tag = "mem"; };
  # a little more allocation after the IFD, so the list stays live across it
  after = builtins.genList (i: toString (builtins.elemAt big i)) (listSize / 100);
  len = builtins.stringLength (builtins.concatStringsSep "," after);
in
builtins.seq sum (builtins.seq ifd.value { inherit sum len; value = ifd.value; })
