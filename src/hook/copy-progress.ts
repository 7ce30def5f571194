// Copies shown to Nix as @nix activities (progress bars in nix build, lines in nix-build).
import { NixActivitySink, type ProgressSink } from "../util/progress.ts";

/** Copies as Nix activities, without a "copying 0 paths" when the other side has everything. */
export function copyProgress(): ProgressSink {
  const inner = new NixActivitySink();
  let shown = false;
  return {
    begin(t, label) {
      shown = t.paths > 0;
      if (shown) inner.begin(t, label);
    },
    pathStart: (path, bytes, from, to) => inner.pathStart(path, bytes, from, to),
    bytes: (path, n) => inner.bytes(path, n),
    pathDone: (path, ok) => inner.pathDone(path, ok),
    end(ok) {
      if (shown) inner.end(ok);
      shown = false;
    },
  };
}

