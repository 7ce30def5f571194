// Expected: src/sys/posix-path.ts gives exactly node:path's posix results (the hook uses it instead of
// node:path, which costs start-up CPU), for ordinary paths and the odd ones (., .., //, trailing /).
import { expect, test } from "bun:test";
import { posix } from "node:path";
import { basename, dirname, join, normalize } from "../../src/sys/posix-path.ts";

const paths = [
  "", ".", "..", "/", "//", "///", "a", "a/", "/a", "//a", "///a", "/a/", "a/b", "a//b", "a/b/", "/a/b/c", "./a",
  "../a", "a/..", "a/../..", "/..", "/../a", "a/./b", "a/../b/", "../../a/b/../c", "/a/b/../../..", "./", "../",
  ".a", "a.b/c.d", "/etc/nix/nsh.conf", "~/x", "a/b/c/../../d/./e//", "/nix/store/abc-x/bin/nix", "....", "a/.../b",
];

test.each(paths)("normalize, dirname, basename of %p", (p) => {
  expect(normalize(p)).toBe(posix.normalize(p));
  expect(dirname(p)).toBe(posix.dirname(p));
  expect(basename(p)).toBe(posix.basename(p));
});

test.each([
  [[]],
  [[""]],
  [["", ""]],
  [["/etc/nix", "nsh.conf"]],
  [["/home/u", ".config"]],
  [["/home/u/.config", "nix", "nsh.conf"]],
  [["a", "/b"]],
  [["a/", "/b/"]],
  [["", "a"]],
  [["/", ".."]],
  [["a", "..", ".."]],
  [["/x/y", "../z"]],
  [["rel", "./x/"]],
])("join %p", (parts) => {
  expect(join(...parts)).toBe(posix.join(...parts));
});
