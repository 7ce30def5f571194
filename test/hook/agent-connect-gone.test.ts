// Expected: the node-side bridge (`nsh __agent-connect JOBDIR MODE [SECONDS]`) that a build taking a pilot
// job starts with 0 seconds to wait says at once, with exit 1, that the agent has left when its socket is
// gone (the build then looks for another pilot or submits), instead of waiting a minute for a socket as
// it does for a job that has just started. A wait that is not a number of seconds is a usage error.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const NSH = path.join(import.meta.dir, "..", "..", "dist", "nsh");
let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-bridge-"));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

async function bridge(args: string[], timeoutMs: number) {
  const p = Bun.spawn([NSH, "__agent-connect", ...args], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
  const [code, err] = await Promise.all([p.exited, new Response(p.stderr).text()]);
  clearTimeout(timer);
  return { code, err, killed: p.signalCode === "SIGKILL" };
}

test("told not to wait, a bridge to a job directory without an agent fails at once, saying so", async () => {
  const r = await bridge([dir, "log", "0"], 20_000);
  expect(r.killed).toBe(false);
  expect(r.code).toBe(1);
  expect(r.err).toContain("no agent socket");
});

test("without the argument it still waits for the socket (a job that has just started)", async () => {
  const r = await bridge([dir, "log"], 1500);
  expect(r.killed).toBe(true);
});

test("a wait that is not a number of seconds is a usage error", async () => {
  const r = await bridge([dir, "log", "soon"], 20_000);
  expect(r.code).toBe(2);
  expect(r.err).toContain("usage: nsh __agent-connect");
});
