// The small protocols between the hook and its helpers: the agent's status line (first on a log
// connection) and the lines the hook sends its reaper.
import { expect, test } from "bun:test";
import { parseStatusLine, statusLine } from "../../src/agent/protocol.ts";
import { readReaperLines } from "../../src/hook/reaper.ts";

test("the agent's status line round-trips", () => {
  expect(statusLine()).toBe("nsh-agent ready\n");
  expect(parseStatusLine(statusLine().trimEnd())).toEqual({ ok: true });
  const err = statusLine("nix-store is not on the job's PATH\non node x");
  expect(err.split("\n").length).toBe(2); // one line, whatever the message holds
  expect(parseStatusLine(err.trimEnd())).toEqual({ ok: false, error: "nix-store is not on the job's PATH on node x" });
  expect(parseStatusLine("building foo")).toBeUndefined();
  expect(parseStatusLine("nsh-agent what")).toBeUndefined();
});

test("the reaper's lines: order, job id, done", () => {
  const order = JSON.stringify({ conf: {}, env: {}, record: { stateDir: "/s", key: "k" } });
  expect(readReaperLines([order])).toEqual({ order: JSON.parse(order), done: false });
  expect(readReaperLines([order, JSON.stringify({ jobId: "42" }), ""])).toMatchObject({ jobId: "42", done: false });
  expect(readReaperLines([order, JSON.stringify({ jobId: "42" }), "done"])).toMatchObject({ jobId: "42", done: true });
  expect(readReaperLines([])).toEqual({ done: false });
});

test("the agent says why the job cannot run nix-store", async () => {
  const { nixStoreProblem } = await import("../../src/agent/agent.ts");
  expect(await nixStoreProblem("nix-store", undefined, { PATH: "/nonexistent" })).toMatch(/^nix-store is not on the job's PATH on node \S+ \(PATH=\/nonexistent\): set remote-nix-bin-dir in nsh\.conf/);
  expect(await nixStoreProblem("/nonexistent/bin/nix-store", "/nonexistent/bin")).toMatch(/^there is no executable \/nonexistent\/bin\/nix-store on node \S+ \(remote-nix-bin-dir = \/nonexistent\/bin\)/);
  // /bin/false exists and is executable, but is no nix-store.
  expect(await nixStoreProblem("/bin/false", "/bin")).toMatch(/^\/bin\/false --version failed on node \S+ \(exit 1\)/);
});

test("with a memo, the agent runs a nix-store it knows (same file) only once; a changed one again", async () => {
  const { checkNixStore, jobsDirOf } = await import("../../src/agent/agent.ts");
  const { fileMemo } = await import("../../src/state/memo.ts");
  const fs = await import("node:fs");
  const os = await import("node:os");
  const path = await import("node:path");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-agent-memo-"));
  try {
    const exe = path.join(dir, "nix-store");
    const runs = path.join(dir, "runs");
    const script = (v: string) => `#!/bin/sh\necho run >> ${runs}\necho "nix-store (Nix) ${v}"\n`;
    fs.writeFileSync(exe, script("2.8.0"), { mode: 0o755 });
    const memo = fileMemo<string>(dir, "nix-version", 60_000);
    const count = () => fs.readFileSync(runs, "utf8").split("\n").filter(Boolean).length;
    expect(await checkNixStore(exe, dir, process.env, memo)).toEqual({ version: "nix-store (Nix) 2.8.0" });
    expect(await checkNixStore(exe, dir, process.env, memo)).toEqual({ version: "nix-store (Nix) 2.8.0" });
    expect(count()).toBe(1);
    fs.writeFileSync(exe, script("2.34.1"), { mode: 0o755 }); // another binary at the same path
    expect(await checkNixStore(exe, dir, process.env, memo)).toEqual({ version: "nix-store (Nix) 2.34.1" });
    expect(count()).toBe(2);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  expect(jobsDirOf("/c/state/jobs/k1")).toBe("/c/state/jobs");
  expect(jobsDirOf("/c/state/jobs/k1/s3")).toBe("/c/state/jobs");
  expect(jobsDirOf("/elsewhere/k1")).toBeUndefined();
});
