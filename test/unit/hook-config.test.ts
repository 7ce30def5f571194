import { expect, test } from "bun:test";
import { defaultHook, rewriteSettings, splitHookSetting } from "../../src/sigstop/hook-config.ts";

const cfg = { fifo: "/tmp/nix-sigstop-x/events", hookStore: "local", proxyStore: "unix:///tmp/nix-sigstop-x/daemon.sock", hookScript: "/tmp/nix-sigstop-x/build-hook" };

test("Nix 2.8's default hook is libexec/nix/build-remote", () =>
  expect(defaultHook("/usr/bin", (p) => p === "/usr/libexec/nix/build-remote")).toEqual(["/usr/libexec/nix/build-remote"]));
test("newer Nix runs nix __build-remote", () => expect(defaultHook("/nix/store/x-nix/bin", () => false)).toEqual(["/nix/store/x-nix/bin/nix", "__build-remote"]));
test("hook settings split like Nix 2.17+", () => expect(splitHookSetting(" /bin/hook  --flag ")).toEqual(["/bin/hook", "--flag"]));

test("the actual hook sees its own path and the real store, never our proxy", () => {
  const s = new Map([["build-hook", cfg.hookScript], ["builders", "ssh://x"], ["store", cfg.proxyStore]]);
  const out = rewriteSettings(s, { ...cfg, actualHook: ["/opt/nsh"] });
  expect([...out]).toEqual([["build-hook", "/opt/nsh"], ["builders", "ssh://x"], ["store", "local"]]);
});
test("a store the user chose for the daemon is kept", () => {
  const out = rewriteSettings(new Map([["store", "auto"]]), cfg);
  expect(out.get("store")).toBe("auto");
});
