// Expected: the fallback hook (Nix's own build-remote) is looked for next to the Nix that started
// nsh (`/proc/<nix>/exe`), and used only if it exists there; else next to the `nix` on PATH; and
// when neither exists the error says what was tried and what to set (fallback-build-hook), instead
// of a hook command that cannot start. `/proc/<nix>/exe` misleads when the daemon's package was
// upgraded or garbage-collected ("…/bin/nix (deleted)") or under a chroot (the host's path).
import { expect, test } from "bun:test";
import { fallbackHook } from "../../src/hook/fallback.ts";

const has = (...paths: string[]) => (p: string) => paths.includes(p);

test.each([
  ["2.8 next to the daemon", "/usr/bin", "/opt/bin", has("/usr/libexec/nix/build-remote"), ["/usr/libexec/nix/build-remote"]],
  ["2.18+ next to the daemon", "/nix/store/a-nix/bin", "/usr/bin", has("/nix/store/a-nix/bin/nix"), ["/nix/store/a-nix/bin/nix", "__build-remote"]],
  ["daemon's nix deleted: PATH's nix", "/nix/store/old-nix/bin", "/nix/store/new-nix/bin", has("/nix/store/new-nix/bin/nix"), ["/nix/store/new-nix/bin/nix", "__build-remote"]],
  ["chroot host path: PATH's 2.8", "/var/tmp/root/usr/bin", "/usr/bin", has("/usr/libexec/nix/build-remote"), ["/usr/libexec/nix/build-remote"]],
] as const)("%s", (_what, dir, onPath, exists, want) => {
  expect(fallbackHook(undefined, () => dir, exists, () => onPath)).toEqual([...want]);
});

test("neither exists: a message naming what was tried and what to set", () => {
  const run = () => fallbackHook(undefined, () => "/gone/bin", has(), () => undefined);
  expect(run).toThrow("Nix's own build hook is not there (/gone/bin/nix does not exist");
  expect(run).toThrow("set fallback-build-hook in nsh.conf");
});

test("fallback-build-hook set: used as it is, nothing looked up", () => {
  let asked = false;
  const dir = () => ((asked = true), "/x");
  expect(fallbackHook({ "fallback-build-hook": "/opt/hook -v" }, dir, has())).toEqual(["/opt/hook", "-v"]);
  expect(asked).toBe(false);
});
