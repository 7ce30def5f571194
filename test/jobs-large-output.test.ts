// Expected: `nsh jobs --all --json` into a pipe (`| jq`, a benchmark's reader) writes every record, however many:
// before, a listing longer than 128 KiB was cut off where nsh exited (the last line half written), so a
// machine with a few hundred finished jobs could not be listed. Here: 1000 records of a state directory.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const NSH = path.join(import.meta.dir, "..", "dist", "nsh");
const N = 1000;
let dir: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-jobs-many-"));
  fs.mkdirSync(path.join(dir, "state", "jobs"), { recursive: true });
  for (let i = 0; i < N; i++) {
    const key = `k${i}`;
    const rec = {
      key, drv: `/nix/store/${"a".repeat(32)}-leaf-${i}.drv`, scheduler: "slurm", jobId: String(1000 + i), node: "node1",
      state: "succeeded", submittedAt: 1_700_000_000_000 + i, phases: { queue: 1, upload: 0.2, build: 0.3, download: 0.1 },
      marks: { hook: 1, submitted: 2, running: 3, uploaded: 4, built: 5, imported: 6, settled: 7 }, hookPid: 1,
    };
    fs.writeFileSync(path.join(dir, "state", "jobs", `${key}.json`), JSON.stringify(rec));
  }
  fs.writeFileSync(path.join(dir, "nsh.conf"), `state-dir = ${path.join(dir, "state")}\n`);
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

test("every record reaches the pipe, each line whole, even when its reader starts late", async () => {
  // The reader starts a moment after nsh has written (as `| jq` may): the pipe is full when nsh is done.
  const p = Bun.spawn(["sh", "-c", `"$0" jobs --all --json | { sleep 1; cat; }`, NSH], {
    env: { ...process.env, NSH_CONF: path.join(dir, "nsh.conf"), HOME: dir }, stdout: "pipe", stderr: "pipe",
  });
  const [out, code, err] = await Promise.all([new Response(p.stdout).text(), p.exited, new Response(p.stderr).text()]);
  expect(err).toBe("");
  expect(code).toBe(0);
  expect(out.length).toBeGreaterThan(128 * 1024);
  const lines = out.trim().split("\n");
  expect(lines).toHaveLength(N);
  expect(new Set(lines.map((l) => (JSON.parse(l) as { jobId: string }).jobId)).size).toBe(N);
});
