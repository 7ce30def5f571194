import { expect, test } from "bun:test";
import { pathsToLock, physicalPath } from "../../src/remote/import-local.ts";

test.each([
  ["local", "/nix/store/abc-x", "/nix/store/abc-x"],
  ["auto", "/nix/store/abc-x", "/nix/store/abc-x"],
  // A chroot store keeps files in <root>/nix/store whatever its logical store directory.
  ["local?root=/srv/r", "/tmp/lab/s/abc-x", "/srv/r/nix/store/abc-x"],
  ["/srv/r", "/nix/store/abc-x", "/srv/r/nix/store/abc-x"],
  ["local?root=/srv/a%20b", "/nix/store/abc-x", "/srv/a b/nix/store/abc-x"],
  ["local?root=/srv/r&real=/data/store", "/nix/store/abc-x", "/data/store/abc-x"],
])("%p: %p lives at %p", (store, p, real) => expect(physicalPath(store, p)).toBe(real));

// Nix holds the outputs' locks during the hook; every other path's lock is ours to take, sorted like Nix's.
test.each([
  [["/s/b-dep", "/s/a-out", "/s/c-dep"], ["/s/a-out"], ["/s/b-dep", "/s/c-dep"]],
  [["/s/a-out"], ["/s/a-out"], []],
  [["/s/x", "/s/x"], [], ["/s/x"]],
])("items %p with held %p: lock %p", (paths, held, want) => expect(pathsToLock(paths.map((path) => ({ path })), held)).toEqual(want));
