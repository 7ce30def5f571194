import { expect, test } from "bun:test";
import { resolveUpstream } from "../../src/sigstop/store.ts";

const facts = (over: Partial<Parameters<typeof resolveUpstream>[1]> = {}) => ({
  env: { NIX_STATE_DIR: "/lab/var" },
  stateDirWritable: false,
  socketExists: () => true,
  ...over,
});

test.each([
  ["daemon", facts(), { kind: "socket", path: "/lab/var/daemon-socket/socket", store: "daemon" }],
  ["unix:///run/x.sock", facts(), { kind: "socket", path: "/run/x.sock", store: "unix:///run/x.sock" }],
  ["daemon", facts({ env: { NIX_DAEMON_SOCKET_PATH: "/s" } }), { kind: "socket", path: "/s", store: "daemon" }],
  // root: auto means the local store, which bypasses any daemon: a private nix-daemon --stdio serves it
  ["auto", facts({ stateDirWritable: true }), { kind: "stdio", store: "local" }],
  ["auto", facts(), { kind: "socket", path: "/lab/var/daemon-socket/socket", store: "daemon" }],
  ["auto", facts({ socketExists: () => false }), { kind: "stdio", store: "local" }],
  ["local", facts(), { kind: "stdio", store: "local" }],
  ["/tmp/chroot", facts(), { kind: "stdio", store: "/tmp/chroot" }],
  ["local?root=/x", facts(), { kind: "stdio", store: "local?root=/x" }],
])("%p resolves", (store, f, expected) => expect(resolveUpstream(store, f)).toEqual(expected as never));

test.each(["ssh-ng://host", "https://cache.nixos.org", "weird"])("%p is unsupported with a reason", (store) => {
  const u = resolveUpstream(store, facts());
  expect(u.kind).toBe("unsupported");
  if (u.kind === "unsupported") expect(u.reason).toContain(store.split(":")[0]!);
});
