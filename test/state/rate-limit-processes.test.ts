// Expected: 6 nsh processes taking scheduler tokens from one shared bucket as fast as they can get
// them are granted, all together, at most burst + rate·t tokens by any time t after they start
// (separate buckets per process would grant each process its own burst at once); every process
// gets some.
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-rate-"));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
const worker = path.join(import.meta.dir, "fixtures", "polite-worker.ts");

test("6 processes hammering one bucket (burst 10, 5/s) for 3 s stay within burst + rate·t", async () => {
  const burst = 10;
  const rate = 5;
  const startAt = Date.now() + 2500;
  const duration = 3000;
  const procs = Array.from({ length: 6 }, () =>
    Bun.spawn([process.execPath, worker, "bucket", root, String(burst), String(rate), String(startAt), String(duration)], { stdout: "pipe", stderr: "pipe" }),
  );
  const res = await Promise.all(
    procs.map(async (p) => {
      const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
      if (code !== 0) throw new Error(`worker exited ${code}: ${err}`);
      return JSON.parse(out.trim().split("\n").at(-1)!) as { grants: number[] };
    }),
  );
  const all = res.flatMap((r) => r.grants).sort((a, b) => a - b);
  for (const [i, t] of all.entries()) {
    // i + 1 grants by time t; nobody took before startAt, so the bucket was full at startAt at the latest.
    expect(i + 1).toBeLessThanOrEqual(burst + (rate * (t - startAt)) / 1000);
  }
  for (const r of res) expect(r.grants.length).toBeGreaterThan(0);
  console.log(`[rate] ${all.length} grants in ${duration} ms by 6 processes; bound at the end ${burst + (rate * duration) / 1000}; per process ${res.map((r) => r.grants.length).join(" ")}`);
});
