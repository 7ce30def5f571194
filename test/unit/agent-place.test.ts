// Expected: the agent's placing script (run here by the real /bin/sh, as on a login host) installs
// the binary only when exactly its bytes arrived (size and sha256), never a short or corrupt one,
// leaves no temporary file behind, lets one of several concurrent placements upload while the others
// wait and then send nothing, and still works without flock or any sha256 tool. The presence check
// says "present" only for a verified binary (stamp and size), not for a truncated one.
import { afterAll, expect, test } from "bun:test";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { checkCommand, placeScript, stampPath, type AgentIdentity } from "../../src/hook/agent-place.ts";
import { lineReader } from "../../src/hook/agent-channels.ts";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-agent-place-"));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const payload = crypto.randomBytes(300_000);
let n = 0;
function fresh(): { agent: AgentIdentity; dir: string } {
  const dir = path.join(root, `s${n++}`, "bin");
  const sha256 = crypto.createHash("sha256").update(payload).digest("hex");
  return { dir, agent: { bin: path.join(dir, `nsh-${sha256.slice(0, 16)}`), sha256, size: payload.length } };
}

function start(agent: AgentIdentity, env: Record<string, string> = { PATH: process.env.PATH ?? "/usr/bin:/bin" }) {
  const p = Bun.spawn(["/bin/sh", "-c", placeScript(agent, `${process.pid}-${n++}`)], { stdin: "pipe", stdout: "pipe", stderr: "pipe", env });
  return { p, lines: lineReader(p.stdout.getReader()) };
}

/** Runs a placement to its end, sending `data` once the script asks for it. */
async function place(agent: AgentIdentity, data: Uint8Array, env?: Record<string, string>) {
  const { p, lines } = start(agent, env);
  const first = await lines.next();
  if (first === "send") p.stdin.write(data);
  await p.stdin.end();
  const last = await lines.next();
  return { first, last, code: await p.exited, stderr: await new Response(p.stderr).text() };
}

const check = (agent: AgentIdentity, dir: string) => Bun.spawnSync(["/bin/sh", "-c", checkCommand(agent, path.join(dir, "..", "jobs", "k"))]).stdout.toString().trim();
const leftovers = (dir: string) => fs.readdirSync(dir).filter((f) => f.includes(".upload-"));

test("the whole binary: installed, stamped, found present; placing again sends nothing", async () => {
  const { agent, dir } = fresh();
  expect(check(agent, dir)).toBe("missing");
  const r = await place(agent, payload);
  expect([r.first, r.last, r.code]).toEqual(["send", "placed", 0]);
  expect(fs.readFileSync(agent.bin).equals(payload)).toBe(true);
  expect(fs.statSync(agent.bin).mode & 0o777).toBe(0o755);
  expect(check(agent, dir)).toBe("present");
  expect(leftovers(dir)).toEqual([]);
  const again = await place(agent, payload);
  expect([again.first, again.code]).toEqual(["present", 0]);
});

test("an upload cut short installs nothing and leaves no temporary file", async () => {
  const { agent, dir } = fresh();
  const r = await place(agent, payload.subarray(0, 65_536));
  expect(r.code).not.toBe(0);
  expect(r.stderr).toContain("cut short (65536 of 300000 bytes arrived)");
  expect(fs.existsSync(agent.bin)).toBe(false);
  expect(fs.existsSync(stampPath(agent.bin))).toBe(false);
  expect(leftovers(dir)).toEqual([]);
  expect(check(agent, dir)).toBe("missing");
});

test("bytes of the right size but the wrong content install nothing", async () => {
  const { agent, dir } = fresh();
  const bad = Buffer.from(payload);
  bad[1000] = bad[1000]! ^ 0xff;
  const r = await place(agent, bad);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(/has sha256 [0-9a-f]{64}, not /);
  expect(fs.existsSync(agent.bin)).toBe(false);
  expect(leftovers(dir)).toEqual([]);
});

test("a truncated binary under the hash name (even with a stamp) is not present, and is replaced", async () => {
  const { agent, dir } = fresh();
  await place(agent, payload);
  fs.truncateSync(agent.bin, 65_536);
  expect(check(agent, dir)).toBe("missing");
  const r = await place(agent, payload);
  expect([r.first, r.last, r.code]).toEqual(["send", "placed", 0]);
  expect(fs.readFileSync(agent.bin).equals(payload)).toBe(true);
  // A binary without a stamp (as an older nsh left it) is not trusted either.
  fs.rmSync(stampPath(agent.bin));
  expect(check(agent, dir)).toBe("missing");
});

test("two placements at once: the second waits for the first, then sends nothing", async () => {
  const { agent } = fresh();
  const a = start(agent);
  expect(await a.lines.next()).toBe("send");
  const b = start(agent);
  // b is blocked on the lock while a has not finished: its first line comes only after a's end.
  const bFirst = b.lines.next();
  const raced = await Promise.race([bFirst, Bun.sleep(300).then(() => "waiting")]);
  expect(raced).toBe("waiting");
  a.p.stdin.write(payload);
  await a.p.stdin.end();
  expect(await a.lines.next()).toBe("placed");
  expect(await bFirst).toBe("present");
  await b.p.stdin.end();
  expect(await b.p.exited).toBe(0);
});

test("without flock, sha256sum, shasum or openssl: a mkdir lock and the size check still hold", async () => {
  const { agent, dir } = fresh();
  const tools = path.join(root, "tools");
  fs.mkdirSync(tools, { recursive: true });
  for (const t of ["cat", "mkdir", "rmdir", "rm", "mv", "chmod", "wc", "tr", "find", "sleep", "printf", "hostname", "test"]) {
    const at = Bun.which(t);
    if (at && !fs.existsSync(path.join(tools, t))) fs.symlinkSync(at, path.join(tools, t));
  }
  const env = { PATH: tools };
  const short = await place(agent, payload.subarray(0, 1000), env);
  expect(short.code).not.toBe(0);
  expect(fs.existsSync(agent.bin)).toBe(false);
  const r = await place(agent, payload, env);
  expect([r.first, r.last, r.code]).toEqual(["send", "placed", 0]);
  expect(r.stderr).toContain("the agent binary's size was checked, not its sha256");
  expect(fs.readFileSync(agent.bin).equals(payload)).toBe(true);
  // The mkdir lock is gone once the placement ended.
  expect(fs.readdirSync(dir).filter((f) => f.endsWith(".lock.d"))).toEqual([]);
});
