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
