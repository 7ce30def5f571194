// Expected: when nix runs in another network namespace than the daemon (a container with the
// daemon's socket mounted in), direct mode still sees both ends of nix's daemon connection (the
// daemon's accepted socket belongs to the namespace of the one who connected, nix), so a 50 MB log
// flood while nix is stopped still completes: the daemon's send buffer is seen filling, nix is
// continued to drain (drain-resumes), and the evaluation succeeds.
import { afterAll, beforeAll, expect, test } from "bun:test";
import path from "node:path";
import { startNixLab, type NixLab } from "../lab/nix.ts";
import { SIGSTOP, report, salt } from "./helpers.ts";

let lab: NixLab;
beforeAll(async () => {
  lab = await startNixLab({ daemon: true, name: "flood-netns" });
});
afterAll(async () => {
  await lab?.cleanup();
});

test("a log flood from a daemon in another network namespace drains", async () => {
  const rep = path.join(lab.root, "flood-netns.json");
  const s = salt();
  // unshare -n: the wrapper and nix get a network namespace of their own; the daemon stays outside.
  const p = Bun.spawn(["unshare", "-n", SIGSTOP, "--report", rep, "eval", "--store", "daemon", "--impure", "--expr", `import ${lab.expr("ifd-flood")} { salt = "${s}"; }`], {
    env: lab.env,
    cwd: lab.root,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  expect({ code, stderr }).toMatchObject({ code: 0 });
  expect(stdout.trim()).toBe(`"flood-${s}"`);
  const rp = report(rep);
  expect(rp.stops).toBe(1);
  expect(rp.drainResumes as number).toBeGreaterThan(0);
  const proxy = rp.proxy!;
  expect(proxy.mode as unknown).toBe("direct");
  expect(proxy.connections).toBeGreaterThanOrEqual(1);
  expect(proxy.peakDaemonSendBytes).toBeGreaterThanOrEqual(proxy.daemonSendBufferBytes! / 2);
}, 120000);
