// Expected: a build's job tells the waiting hook that it started (start-notice-host, default on),
// and the hook then asks the scheduler at once. A user notices it when the query budget is nearly
// spent (a chain of builds, a busy machine): the hook paces its polls to the budget, seconds apart,
// yet a job that starts is built at once. Here the job queues behind a job that holds the node for
// 3 s, with a budget (scheduler-rate = 8 0.1: 4 query tokens, one back every 22 s) spent down to its
// reserve by then: with the notice the hook sees the job running within a second of its start; with
// start-notice-host = off it waits for the paced poll, seconds later. The token is in no log or output.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { confWith, jobsOf, salt } from "./helpers.ts";

let lab: ClusterLab;
beforeAll(async () => {
  lab = await startClusterLab("start-notice");
}, 120000);
afterAll(async () => {
  await lab?.cleanup();
});

/** One build queued behind a 3 s job that takes the whole node; its wall time from the submit. */
async function queuedBuild(notice: string): Promise<{ ms: number; stderr: string; marks: Record<string, number> }> {
  // A fresh state directory each: the rate budget is the machine's, kept there.
  const stateDir = fs.mkdtempSync(path.join(lab.nix.root, "state-"));
  fs.chmodSync(stateDir, 0o700);
  confWith(lab, { "start-notice-host": notice, "scheduler-rate": "8 0.1", "state-dir": stateDir });
  const block = await lab.slurm.run(["sbatch", "--parsable", "--exclusive", "-o", "/dev/null", "--wrap", "sleep 3"]);
  expect(block.code).toBe(0);
  const s = salt();
  const t0 = Date.now();
  const r = await lab.nixBuild([lab.nix.expr("slurm-job"), "--argstr", "salt", s]);
  const ms = Date.now() - t0;
  if (r.code !== 0) console.log(r.stderr.slice(-3000));
  expect(r.code).toBe(0);
  expect(fs.readFileSync(r.stdout.trim(), "utf8").trim()).toBe(`job ${s}`);
  return { ms, stderr: r.stderr, marks: jobsOf(lab, s)[0]?.marks ?? {} };
}

test("a queued job's start notice gets it built at once under a spent query budget; off: the paced poll", async () => {
  const on = await queuedBuild("127.0.0.1");
  expect(on.marks["start-noticed"]).toBeDefined();
  expect(on.marks["start-noticed"]!).toBeLessThanOrEqual(on.marks.running!);
  const off = await queuedBuild("off");
  expect(off.marks["start-noticed"]).toBeUndefined();
  for (const x of [on, off]) console.log(JSON.stringify(x.marks));
  const [onMs, offMs] = [on, off].map((x) => x.marks.running! - x.marks.submitted!);
  console.log(`a build queued 3 s: running ${onMs} ms after its submit with the start notice, ${offMs} ms without`);
  expect(on.marks.running! - on.marks["start-noticed"]!).toBeLessThan(1000);
  expect(onMs!).toBeLessThan(offMs! - 3000);
  // The token travels in the job's environment only.
  const tokens = /\b[0-9a-f]{32}@/;
  expect(on.stderr).not.toMatch(tokens);
  const logs = fs.readdirSync(lab.nix.root, { recursive: true, encoding: "utf8" }).filter((f) => /\.log$/.test(f));
  for (const f of logs) expect(fs.readFileSync(path.join(lab.nix.root, f), "utf8")).not.toMatch(tokens);
}, 300_000);
