// Expected: a `try` nsh declines goes to the fallback hook, which is started only then (not for a
// build nsh takes), gets a byte-exact copy of the settings blob (duplicate records and all) and
// the verbosity as its last argument, and is kept for later declined tries (one process). Its own
// lines and its reply reach Nix unchanged. When nsh then takes a build itself, the idle fallback
// is closed first: it has seen EOF and exited before the executor starts. (In-process; the fallback
// is a recording stand-in for Nix's hook.)
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { childrenMatching, confLoader, request, runInProcess, settingsBlob, tryReq } from "./harness.ts";

const HOOK = path.join(import.meta.dir, "fixtures", "recording-hook.ts");
const fake = (...extra: string[]) => [process.execPath, HOOK, ...extra];
let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-fallback-"));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

// Duplicates and odd order: re-encoding a decoded map would not give these bytes back.
const blob = settingsBlob([["zzz", "last first"], ["builders", "a"], ["builders", "b"], ["empty", ""]]);
const drv = (n: string) => `/nix/store/${n.repeat(32)}-x.drv`;
const conf = confLoader({ "mandatory-system-features": ["nsh"] });

function fresh(name: string): string {
  const d = path.join(dir, name);
  fs.mkdirSync(d);
  return d;
}

test("declined tries: one fallback process, byte-exact settings, verbosity last, replies relayed", async () => {
  const rec = fresh("declined");
  const r = await runInProcess({
    chunks: [blob, request(tryReq(drv("a"))), request(tryReq(drv("b")))],
    conf,
    verbosity: 5,
    fallbackHook: fake("--extra"),
    env: { ...process.env, RECORD_DIR: rec },
  });
  expect(r.code).toBe(0);
  expect(fs.readFileSync(path.join(rec, "blob.bin")).toString("hex")).toBe(Buffer.from(blob).toString("hex"));
  expect(JSON.parse(fs.readFileSync(path.join(rec, "argv.json"), "utf8"))).toEqual(["--extra", "5"]);
  expect(fs.readFileSync(path.join(rec, "tries"), "utf8")).toBe(`${drv("a")}\n${drv("b")}\n`);
  const plain = r.writes.join("").split("\n").filter((l) => !l.startsWith("@nix ") && l);
  expect(plain).toEqual(["plain line from the hook 0", "# decline", "plain line from the hook 1", "# decline"]);
  // the reason is there for who asks (-v), at talkative level
  expect(r.messages.map((m) => m.level)).toContain(4);
  expect(r.messages.find((m) => m.level === 4)?.msg).toContain("does not require the mandatory feature 'nsh'");
  // Nix closed stdin: the fallback got EOF and exited
  expect(fs.existsSync(path.join(rec, "eof"))).toBe(true);
});

test("a build nsh takes never starts the fallback", async () => {
  const rec = fresh("taken");
  const r = await runInProcess({
    chunks: [blob, request(tryReq(drv("c"), "x86_64-linux", ["nsh"]), { inputs: [], wantedOutputs: ["out"] })],
    conf,
    fallbackHook: fake(),
    env: { ...process.env, RECORD_DIR: rec },
    executors: { slurm: async () => 0 },
  });
  expect(r.replies).toEqual(["# accept"]);
  expect(fs.existsSync(path.join(rec, "argv.json"))).toBe(false);
});

test("the idle fallback is closed before nsh takes a build itself", async () => {
  const rec = fresh("closed");
  let during: { children: number[]; sawEof: boolean } | undefined;
  const r = await runInProcess({
    chunks: [blob, request(tryReq(drv("d"))), request(tryReq(drv("e"), "x86_64-linux", ["nsh"]), { inputs: [], wantedOutputs: ["out"] })],
    conf,
    fallbackHook: fake(),
    env: { ...process.env, RECORD_DIR: rec },
    executors: {
      slurm: async () => {
        during = { children: childrenMatching(HOOK), sawEof: fs.existsSync(path.join(rec, "eof")) };
        return 0;
      },
    },
  });
  expect(r.replies).toEqual(["# decline", "# accept"]);
  expect(during).toEqual({ children: [], sawEof: true });
});

test("a fallback that cannot be started: an error message, and Nix may still build locally", async () => {
  const r = await runInProcess({
    chunks: [blob, request(tryReq(drv("f")))],
    conf,
    fallbackHook: ["/nonexistent/build-remote"],
    executors: { slurm: async () => 0 },
  });
  expect(r.code).toBe(0);
  expect(r.replies).toEqual(["# decline"]);
  expect(r.messages.find((m) => m.level === 0)?.msg).toContain("cannot start Nix's build hook '/nonexistent/build-remote'");
});

test("a fallback that dies without answering: a warning and `# decline`, never a broken build", async () => {
  const r = await runInProcess({
    chunks: [blob, request(tryReq(drv("g"))), request(tryReq(drv("h")))],
    conf,
    fallbackHook: ["/bin/sh", "-c", "exit 3"],
    executors: { slurm: async () => 0 },
  });
  expect(r.code).toBe(0);
  expect(r.replies).toEqual(["# decline", "# decline"]);
  const warnings = r.messages.filter((m) => m.level === 1).map((m) => m.msg);
  expect(warnings).toEqual([expect.stringContaining("exited (status 3) without answering")]);
});

test("a fallback reply Nix does not know is not passed on", async () => {
  const rec = fresh("nonsense");
  const r = await runInProcess({
    chunks: [blob, request(tryReq(drv("i")))],
    conf,
    fallbackHook: fake(),
    env: { ...process.env, RECORD_DIR: rec, REPLY: "maybe" },
    executors: { slurm: async () => 0 },
  });
  expect(r.replies).toEqual(["# decline"]);
  expect(r.messages.find((m) => m.level === 1)?.msg).toContain("gave the reply 'maybe'");
});

test("the fallback accepts: machine line in the same write, inputs relayed, its lines and status passed on", async () => {
  const rec = fresh("accepted");
  const accepted = { inputs: ["/nix/store/" + "d".repeat(32) + "-in"], wantedOutputs: ["out"] };
  const r = await runInProcess({
    chunks: [blob, request(tryReq(drv("j")), accepted)],
    conf,
    fallbackHook: fake(),
    env: { ...process.env, RECORD_DIR: rec, REPLY: "accept", STATUS: "5" },
    executors: { slurm: async () => 0 },
  });
  expect(r.code).toBe(5);
  expect(r.writes).toContain("# accept\nssh://builder-7\n");
  expect(JSON.parse(fs.readFileSync(path.join(rec, "accepted.json"), "utf8"))).toEqual(accepted);
  expect(fs.readFileSync(path.join(rec, "eof-after-accept"), "utf8")).toBe("true");
  expect(r.writes.join("")).toEndWith(`@nix {"action":"msg","level":3,"msg":"copying outputs"}\n`);
});

test("SIGTERM while the fallback builds: it gets SIGTERM and its status is ours", async () => {
  const rec = fresh("term");
  const term = new AbortController();
  const run = runInProcess({
    chunks: [blob, request(tryReq(drv("k")), { inputs: [], wantedOutputs: ["out"] })],
    conf,
    fallbackHook: fake(),
    env: { ...process.env, RECORD_DIR: rec, REPLY: "accept", WAIT_TERM: "1" },
    executors: { slurm: async () => 0 },
    terminate: term.signal,
  });
  while (!fs.existsSync(path.join(rec, "waiting"))) await Bun.sleep(10);
  term.abort();
  const r = await run;
  expect(r.code).toBe(143);
  expect(r.writes.join("")).toEndWith("terminated\n");
});

test("fallback-build-hook from nsh.conf is used, even when other lines of nsh.conf are broken", async () => {
  const rec = fresh("fromconf");
  const broken = confLoader({ "fallback-build-hook": fake("--from-conf").join(" ") }, [{ file: "/etc/nix/nsh.conf", line: 7, message: "/etc/nix/nsh.conf:7: 'job-scheduler' expects one of slurm, slurm-native, pbs, got 'lsf'" }]);
  const r = await runInProcess({
    chunks: [blob, request(tryReq(drv("l"), "x86_64-linux", ["nsh"]))],
    conf: broken,
    env: { ...process.env, RECORD_DIR: rec },
    executors: { slurm: async () => 0 },
  });
  expect(JSON.parse(fs.readFileSync(path.join(rec, "argv.json"), "utf8"))).toEqual(["--from-conf", "3"]);
  expect(r.replies).toEqual(["# decline"]);
  expect(r.messages.filter((m) => m.level === 0).map((m) => m.msg)).toEqual([
    "nsh: error: /etc/nix/nsh.conf:7: 'job-scheduler' expects one of slurm, slurm-native, pbs, got 'lsf'",
    "nsh: error: nsh builds nothing on the cluster until nsh.conf is fixed: every build goes to Nix's own build hook or is built locally",
  ]);
});
