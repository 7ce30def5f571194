// Expected: a command that uses ssh2 (here `nsh copy`) never runs code from the node_modules of the
// directory it is run in. ssh2 asks for the optional native package `cpu-features`, which the binary
// leaves out; Bun would look for it from the working directory up, so anyone who can write such a
// directory (/tmp/node_modules) could run code as whoever runs nsh there. nsh answers that request
// itself (src/sys/no-cpu-features.ts): the copy goes on, and the planted package never runs.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const NSH = path.join(import.meta.dir, "..", "..", "dist", "nsh");
let dir: string;
let work: string;
let planted: string;
let trace: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-cwd-modules-"));
  work = path.join(dir, "project", "sub");
  fs.mkdirSync(work, { recursive: true });
  planted = path.join(dir, "planted-code-ran");
  trace = path.join(dir, "trace");
  // In an ancestor of the working directory, as /tmp/node_modules would be for /tmp/project/sub.
  const pkg = path.join(dir, "node_modules", "cpu-features");
  fs.mkdirSync(pkg, { recursive: true });
  fs.writeFileSync(path.join(pkg, "package.json"), JSON.stringify({ name: "cpu-features", version: "0.0.0", main: "index.js" }));
  const code = `require("fs").writeFileSync(${JSON.stringify(planted)}, "ran\\n");\nmodule.exports = () => ({ flags: {} });\n`;
  fs.writeFileSync(path.join(pkg, "index.js"), code);
});
afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test("nsh copy over ssh, run below a node_modules with cpu-features: the planted code does not run", async () => {
  const env = { ...(process.env as Record<string, string>), HOME: dir, NSH_DEBUG_LOADED: trace };
  const argv = [NSH, "copy", "--to", "127.0.0.1:1", `/nix/store/${"a".repeat(32)}-x`];
  const p = Bun.spawn(argv, { cwd: work, env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => p.kill("SIGKILL"), 60_000);
  const [err, code] = await Promise.all([new Response(p.stderr).text(), p.exited]);
  clearTimeout(timer);
  // It got as far as connecting (nothing listens on port 1), so ssh2 was loaded and asked.
  expect(code).not.toBe(0);
  expect(err).toContain("127.0.0.1:1");
  expect(fs.readFileSync(trace, "utf8")).toContain("ssh2");
  expect(fs.existsSync(planted)).toBe(false);
});
