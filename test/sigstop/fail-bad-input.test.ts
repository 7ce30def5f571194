// Expected: bad surroundings give a clear message and nix's own exit status, never a hang and never
// a stopped or orphaned process: nix missing, a daemon that is not there, an actual build hook that
// dies without answering or answers nonsense, and bad wrapper arguments.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { startNixLab, type NixLab } from "../lab/nix.ts";
import { nix, processesMentioning, salt, sigstop } from "./helpers.ts";

let lab: NixLab;
beforeAll(async () => {
  lab = await startNixLab({ daemon: true, name: "bad" });
});
afterAll(async () => {
  await lab?.cleanup();
});

// `.value` forces the IFD: `nix eval` of an attrset prints a failing attribute as «error: …» and exits 0
// on Nix 2.26 and 2.34 (2.8 fails).
const ifd = () => `(import ${lab.expr("ifd-sleep")} { salt = "${salt()}"; }).value`;
const noneStopped = () => expect(processesMentioning(lab.root).filter((p) => p.state === "T")).toEqual([]);

function hookScript(name: string, body: string): string {
  const file = path.join(lab.root, name);
  fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return file;
}

describe("the wrapper's own input", () => {
  test("nix not installed", async () => {
    const r = await sigstop(lab, ["--nix", "/nonexistent/nix", "eval", "--expr", "1"]);
    expect(r.code).toBe(127);
    expect(r.stderr).toContain("cannot run '/nonexistent/nix': not found");
  });
  test("bad option value", async () => {
    const r = await sigstop(lab, ["--buffer-size", "plenty", "eval", "--expr", "1"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--buffer-size: expected a size such as 64M or 1G, got 'plenty'");
  });
  test("no nix arguments", async () => {
    const r = await sigstop(lab, []);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("no nix arguments given");
  });
});

test("a daemon socket nobody listens on: a warning, then nix's own error and status", async () => {
  const store = `unix://${path.join(lab.root, "no-such.sock")}`;
  const expr = ifd();
  const wrapped = await sigstop(lab, ["eval", "--store", store, "--impure", "--expr", expr]);
  const plain = await nix(lab, ["eval", "--store", store, "--impure", "--expr", expr]);
  expect(plain.code).not.toBe(0);
  expect(wrapped.code).toBe(plain.code);
  expect(wrapped.stderr).toContain(`cannot reach the Nix daemon socket ${path.join(lab.root, "no-such.sock")}`);
  expect(wrapped.stderr).toContain(plain.stderr.trim().split("\n")[0]!);
});

test.each([
  ["dies without answering", "exit 3", /exited \(status 3\) without answering/],
  ["answers nonsense", 'cat >/dev/null & echo "# maybe" >&2; sleep 5', /gave the reply 'maybe', which Nix does not know/],
])("an actual hook that %s: a clear message, nix's status, nothing left stopped", async (_n, body, message) => {
  const hook = hookScript(`hook-${salt()}`, body);
  // Each run builds its own derivation: had the wrapped run's build gone on in the daemon and made the
  // output valid, a shared expression would let the plain run succeed (seen once on a loaded machine).
  const wrapped = await sigstop(lab, ["eval", "--store", "daemon", "--build-hook", hook, "--impure", "--expr", ifd()]);
  const plain = await nix(lab, ["eval", "--store", "daemon", "--build-hook", hook, "--impure", "--expr", ifd()]);
  expect(plain.code).not.toBe(0);
  expect(wrapped.code).toBe(plain.code);
  expect(wrapped.stderr).toMatch(message);
  noneStopped();
});
