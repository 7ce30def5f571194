// Expected: EOF on stdin while idle means Nix has nothing more for this hook: the compiled nsh exits
// 0 at once, whether nothing at all arrived, only the settings blob, or a declined `try` had
// already started Nix's build-remote as fallback (which is then closed: no process is left).
// SIGTERM while idle (Nix ≥ 2.35 ending a hook) also ends it promptly.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { startNixLab, type NixLab } from "../lab/nix.ts";
import { DIST_NSH, request, settingsBlob, tryReq } from "./harness.ts";

let lab: NixLab;
let env: Record<string, string>;
beforeAll(async () => {
  lab = await startNixLab({ name: "eof" });
  const conf = path.join(lab.root, "nsh.conf");
  fs.writeFileSync(conf, "mandatory-system-features = nsh\n");
  env = { ...lab.env, NSH_CONF: conf };
});
afterAll(async () => {
  await lab?.cleanup();
});

// A machine for another system: build-remote declines x86_64 builds and stays, waiting for more.
const blob = () => settingsBlob([["builders", "ssh://nowhere aarch64-linux"], ["max-jobs", "1"]]);

function spawnHook() {
  return Bun.spawn([DIST_NSH, "3"], { stdin: "pipe", stdout: "pipe", stderr: "pipe", env, cwd: "/" });
}

const alive = (pid: number) => {
  try {
    return !/^State:\s+Z/m.test(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return false;
  }
};
const kids = (pid: number) => fs.readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);

async function untilLine(stream: ReadableStream<Uint8Array>, re: RegExp): Promise<string> {
  let text = "";
  const reader = stream.getReader();
  while (!re.test(text)) {
    const { done, value } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return text;
}

test.each([
  ["nothing at all", () => new Uint8Array(0)],
  ["the settings blob only", blob],
])("EOF after %s: exit 0 at once", async (_what, bytes) => {
  const p = spawnHook();
  p.stdin.write(bytes());
  await p.stdin.flush();
  const t0 = performance.now();
  p.stdin.end();
  expect(await p.exited).toBe(0);
  const ms = performance.now() - t0;
  expect(await new Response(p.stderr).text()).toBe("");
  expect(ms).toBeLessThan(3000); // "at once": it measures ~20 ms; the bound only catches a wait
  console.log(`EOF after ${_what}: exited in ${ms.toFixed(0)} ms`);
});

test("EOF after a declined try: build-remote is closed and nsh exits 0 at once", async () => {
  const p = spawnHook();
  p.stdin.write(blob());
  p.stdin.write(request(tryReq(`${lab.storeDir}/${"a".repeat(32)}-x.drv`)));
  await p.stdin.flush();
  expect(await untilLine(p.stderr, /^# \S+\n/m)).toMatch(/^# decline\n/m);
  const fallback = kids(p.pid);
  expect(fallback).toHaveLength(1);
  expect(fs.readFileSync(`/proc/${fallback[0]}/cmdline`, "utf8")).toContain("build-remote");
  const t0 = performance.now();
  p.stdin.end();
  expect(await p.exited).toBe(0);
  const ms = performance.now() - t0;
  expect(alive(fallback[0]!)).toBe(false);
  expect(ms).toBeLessThan(3000);
  console.log(`EOF with an idle build-remote: exited in ${ms.toFixed(0)} ms`);
});

test("SIGTERM while idle: nsh ends promptly", async () => {
  const p = spawnHook();
  p.stdin.write(blob());
  await p.stdin.flush();
  await Bun.sleep(100);
  const t0 = performance.now();
  p.kill("SIGTERM");
  await p.exited;
  const ms = performance.now() - t0;
  expect(ms).toBeLessThan(3000);
  console.log(`SIGTERM while idle: exited in ${ms.toFixed(0)} ms (status ${p.exitCode}, signal ${p.signalCode})`);
});
