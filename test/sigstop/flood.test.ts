// Expected: a build that floods its log (50 MB) while nix is stopped still completes: nix is
// continued just long enough to drain the daemon's backlog (drain-resumes), then stopped again, and
// nothing holds more than a bounded amount of the flood.
// Direct mode (the default for a daemon socket): the backlog is the kernel's socket queue, which
// never exceeds the daemon's send buffer; the wrapper saw that buffer half full and let nix drain.
// Relay mode (--relay): the relay holds at most its bound, then stops reading the daemon.
import { afterAll, beforeAll, expect, test } from "bun:test";
import path from "node:path";
import { startNixLab, type NixLab } from "../lab/nix.ts";
import { report, salt, sigstop } from "./helpers.ts";

let lab: NixLab;
beforeAll(async () => {
  lab = await startNixLab({ daemon: true, name: "flood" });
});
afterAll(async () => {
  await lab?.cleanup();
});

async function flood(wrapperArgs: string[]) {
  const rep = path.join(lab.root, `flood-${salt()}.json`);
  const s = salt();
  const r = await sigstop(lab, [...wrapperArgs, "--report", rep, "eval", "--store", "daemon", "--impure", "--expr", `import ${lab.expr("ifd-flood")} { salt = "${s}"; }`]);
  expect(r.code).toBe(0);
  expect(r.stdout.trim()).toBe(`"flood-${s}"`);
  const rp = report(rep);
  expect(rp.stops).toBe(1);
  expect(rp.drainResumes as number).toBeGreaterThan(0);
  // nix itself read 50 MB of log lines without keeping them.
  expect(rp.peakRssBytes as number).toBeLessThan(200 * 1024 * 1024);
  return rp.proxy!;
}

test("direct: a 50 MB log flood while stopped drains through nix's own socket", async () => {
  const proxy = await flood([]);
  expect(proxy.mode as unknown).toBe("direct");
  expect(proxy.connections).toBeGreaterThanOrEqual(1);
  // The daemon's send buffer filled (that is what made the wrapper continue nix)...
  expect(proxy.peakDaemonSendBytes).toBeGreaterThanOrEqual(proxy.daemonSendBufferBytes! / 2);
  // ...and the bytes waiting for nix never exceeded it.
  expect(proxy.peakQueuedBytes).toBeGreaterThan(0);
  expect(proxy.peakQueuedBytes).toBeLessThanOrEqual(proxy.daemonSendBufferBytes!);
  expect(proxy.peakRssBytes).toBeLessThan(150 * 1024 * 1024);
}, 120000);

test("relay: a 50 MB log flood while stopped keeps the relay within its bound", async () => {
  const bound = 1 << 20;
  const proxy = await flood(["--relay", "--buffer-size", "1M"]);
  expect(proxy.mode as unknown).toBe("relay");
  // The flood really went through the relay...
  expect(proxy.bytesToClient).toBeGreaterThan(40e6);
  // ...yet never more than the bound plus one read was queued, and the guard stayed small.
  expect(proxy.peakQueuedBytes).toBeLessThan(bound + 512 * 1024);
  expect(proxy.peakRssBytes).toBeLessThan(150 * 1024 * 1024);
}, 120000);
