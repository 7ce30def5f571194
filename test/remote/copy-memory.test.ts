// Expected: copying a 1 GiB path (through OpenSSH's ssh, nsh's default for big NARs, and through
// ssh2 alone), or 800 small ones, keeps nsh's peak RSS under 100 MiB (NARs stream, never held;
// garbage is collected before it piles up), and
// copies share a host-wide budget of bytes in flight: one that waits for it longer than a second
// says so.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { startNixLab, type NixLab } from "../lab/nix.ts";
import { startSshd, type SshdLab } from "../lab/sshd.ts";
import { NSH, buildMany } from "./helpers.ts";

let lab: NixLab;
let sshd: SshdLab;
beforeAll(async () => {
  lab = await startNixLab({ name: "mem" });
  sshd = await startSshd(lab);
});
afterAll(async () => {
  await lab?.cleanup();
});

const hwm = (pid: number) => {
  try {
    return Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
};

function startCopy(top: string, remoteRoot: string, env: Record<string, string> = {}, extra: string[] = []) {
  return Bun.spawn([NSH, "copy", ...extra, "--to", sshd.alias, "--ssh-config", sshd.configFile, "--remote-store", `local?root=${remoteRoot}`, top], {
    env: { ...lab.env, NSH_STATE_DIR: path.join(lab.root, "nsh-state"), ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** Runs one copy to the end and returns its peak RSS (VmHWM sampled every 20 ms). */
async function peakOfCopy(top: string, remoteRoot: string, expectText: string, extra: string[] = []): Promise<number> {
  const p = startCopy(top, remoteRoot, {}, extra);
  const stderr = new Response(p.stderr).text();
  let peak = 0;
  while (p.exitCode === null) {
    peak = Math.max(peak, hwm(p.pid));
    await Bun.sleep(20);
  }
  expect(await p.exited).toBe(0);
  expect(await stderr).toContain(expectText);
  expect(peak).toBeGreaterThan(0);
  return peak;
}

let big: string;
test.each([
  ["through OpenSSH", []],
  ["through ssh2 alone", ["--openssh-min-size", "0"]],
])("a 1 GiB path %s: peak RSS stays under 100 MiB", async (name, extra) => {
  big ??= await buildMany(lab, 1, 1024);
  const peak = await peakOfCopy(big, path.join(lab.root, `r1g-${extra.length}`), "copied 3 paths (1024.0 MiB)", extra);
  console.log(`peak RSS of nsh copy for 1 GiB ${name}: ${(peak / 1048576).toFixed(1)} MiB`);
  expect(peak).toBeLessThan(100 * 1048576);
}, 180000);

// Many tiny paths bring no NAR bytes to speak of, but each leaves objects behind (this peaked at
// 108 MiB before paths counted towards collection).
test("800 small paths: peak RSS stays under 100 MiB", async () => {
  const peak = await peakOfCopy(await buildMany(lab, 800, 0), path.join(lab.root, "r800"), "copied 801 paths");
  console.log(`peak RSS of nsh copy for 800 small paths: ${(peak / 1048576).toFixed(1)} MiB`);
  expect(peak).toBeLessThan(100 * 1048576);
}, 180000);

test("two copies with a budget for one: the second waits and says so", async () => {
  const [a, b] = [await buildMany(lab, 1, 300), await buildMany(lab, 1, 300)];
  const conf = path.join(lab.root, "budget.conf");
  fs.writeFileSync(conf, "copy-budget = 8M\n");
  const env = { NSH_CONF: conf };
  const p1 = startCopy(a, path.join(lab.root, "rb1"), env);
  await Bun.sleep(150);
  const p2 = startCopy(b, path.join(lab.root, "rb2"), env);
  const [e1, e2] = await Promise.all([new Response(p1.stderr).text(), new Response(p2.stderr).text()]);
  expect([await p1.exited, await p2.exited]).toEqual([0, 0]);
  expect(`${e1}${e2}`).toMatch(/waiting for .* of transfer budget/);
}, 180000);
