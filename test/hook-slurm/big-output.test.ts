// Expected: a build's big output (400 MiB) comes home into the local store while Nix holds its
// output lock, in bounded memory: the local nix-store that adds it (NIX_HELD_LOCKS, Nix 2.8)
// streams the NAR into place instead of holding it whole, as `nix-store --import` would (Nix 2.8
// warns "dumping very large path" above 256 MiB and peaks at the NAR's size), and the build
// succeeds with the output valid and intact.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import { startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { jobsOf, salt } from "./helpers.ts";

let lab: ClusterLab;
beforeAll(async () => {
  lab = await startClusterLab("bigout");
}, 120000);
afterAll(async () => {
  await lab?.cleanup();
});

const MIB = 1 << 20;

/** Peak RSS (VmHWM) of every nix-store running with NIX_HELD_LOCKS, sampled until stopped. */
function watchImporters(): { stop(): Map<number, number> } {
  const peaks = new Map<number, number>();
  const timer = setInterval(() => {
    for (const name of fs.readdirSync("/proc")) {
      if (!/^\d+$/.test(name)) continue;
      try {
        if (!fs.readFileSync(`/proc/${name}/cmdline`, "latin1").includes("nix-store")) continue;
        if (!fs.readFileSync(`/proc/${name}/environ`, "latin1").includes("NIX_HELD_LOCKS=")) continue;
        const hwm = /^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${name}/status`, "latin1"));
        if (hwm) peaks.set(Number(name), Math.max(peaks.get(Number(name)) ?? 0, Number(hwm[1]) * 1024));
      } catch {}
    }
  }, 20);
  return {
    stop() {
      clearInterval(timer);
      return peaks;
    },
  };
}

test("a 400 MiB output is imported under the held lock in bounded memory", async () => {
  const s = salt();
  const watch = watchImporters();
  const r = await lab.nixBuild([lab.nix.expr("big-out"), "--argstr", "salt", s, "--arg", "mib", "400"], 300000);
  const peaks = watch.stop();
  if (r.code !== 0) console.log(r.stderr);
  expect(r.code).toBe(0);
  const out = r.stdout.trim();
  expect(fs.statSync(out).size).toBe(400 * MIB);
  expect((await lab.nix.run(["nix-store", "--verify-path", out], { timeoutMs: 120000 })).code).toBe(0);
  expect(r.stderr).not.toContain("dumping very large path");
  expect(jobsOf(lab, s)[0]?.state).toBe("succeeded");
  // The importer was seen, and stayed far below the NAR's size.
  expect(peaks.size).toBeGreaterThan(0);
  const peak = Math.max(...peaks.values());
  console.log(`peak RSS of the local importer: ${(peak / MIB).toFixed(1)} MiB for a ${400} MiB output`);
  expect(peak).toBeLessThan(100 * MIB);
  await lab.nix.run(["nix-store", "--store", "daemon", "--delete", out]);
}, 300000);
