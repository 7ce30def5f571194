// Expected: started the way Lix ≥ 2.94 starts its build hook (stdin /dev/null, stdout a socketpair
// for Cap'n Proto RPC), nsh does not mistake the empty stdin for "nothing to build" and exit 0: it
// fails at once, saying that this Nix speaks a hook protocol nsh does not, and what to do. Started
// like Nix does (stdin a pipe), it is the hook as before. nix-sigstop's hook relay does the same.
import { expect, test } from "bun:test";
import { isCapnpHookLaunch } from "../../src/nix/hook-protocol.ts";
import { close, socketPair } from "../../src/sys/sock.ts";
import { DIST_NSH } from "./harness.ts";

const DEV_NULL = (1 << 8) | 3;
test.each([
  ["Lix ≥ 2.94: /dev/null in, socket out", { stdin: { charDevice: true, rdev: DEV_NULL }, stdout: { socket: true } }, true],
  ["Nix: a pipe in, the stderr pipe out", { stdin: { charDevice: false, rdev: 0 }, stdout: { socket: false } }, false],
  ["a socket out but stdin a pipe", { stdin: { charDevice: false, rdev: 0 }, stdout: { socket: true } }, false],
  ["/dev/null in, a pipe out (a script, not Lix)", { stdin: { charDevice: true, rdev: DEV_NULL }, stdout: { socket: false } }, false],
  ["another character device in, socket out", { stdin: { charDevice: true, rdev: (1 << 8) | 5 }, stdout: { socket: true } }, false],
])("%s", (_what, fds, want) => {
  expect(isCapnpHookLaunch(fds)).toBe(want);
});

test.each([
  ["nsh", [DIST_NSH, "3"]],
  ["nix-sigstop's hook relay", [DIST_NSH, "__sigstop-hook", "/nonexistent-rundir", "3"]],
])("%s launched like Lix ≥ 2.94's hook: a clear error at once, exit 1", async (_who, argv) => {
  const [ours, theirs] = socketPair();
  try {
    const t0 = performance.now();
    const p = Bun.spawn(argv, { stdin: "ignore", stdout: theirs, stderr: "pipe", cwd: "/" });
    const [code, err] = [await p.exited, await new Response(p.stderr).text()];
    expect(code).toBe(1);
    expect(err).toContain("Cap'n Proto");
    expect(err).toContain("Lix 2.94");
    expect(err).toMatch(/build-hook|nix directly/);
    expect(performance.now() - t0).toBeLessThan(5000);
  } finally {
    close(ours);
    close(theirs);
  }
});
