import { afterAll, beforeAll, expect, test } from "bun:test";
import path from "node:path";
import { startClusterLab, type ClusterLab } from "../test/lab/cluster.ts";
import { jobsOf, salt, squeue, until } from "../test/hook-slurm/helpers.ts";

let lab: ClusterLab;
beforeAll(async () => {
  lab = await startClusterLab("wide50");
  const warm = await lab.nixBuild([lab.nix.expr("wide"), "--argstr", "salt", `warm${salt()}`, "--arg", "n", "1"]);
  expect(warm.code).toBe(0);
}, 120000);
afterAll(async () => { await lab?.cleanup(); });

const configs = (process.env.CONFIGS ?? "0,0,1|20,5,1|20,5,3|20,5,10").split("|");
for (const c of configs) {
  test(`config ${c}`, async () => {
    const [idle, max, k] = c.split(",");
    lab.writeConf(`pilot-idle-time = ${idle}\npilot-max-jobs = ${max}\npilot-builds-per-job = ${k}`);
    const s = salt();
    const t0 = Date.now();
    const r = await lab.nixBuild([path.resolve("bench/expr/hook.nix"), "-A", "all", "--argstr", "salt", s, "-j", "16"], 600_000);
    const sec = (Date.now() - t0) / 1000;
    if (r.code !== 0) console.log(r.stderr.slice(-3000));
    const jobs = new Set(jobsOf(lab, s).map((j) => j.jobId));
    console.log(`idle ${idle} max ${max} K ${k}: code ${r.code}, ${sec.toFixed(1)} s, ${jobs.size} jobs`);
    await until(async () => { const q = await squeue(lab); return q.size === 0 ? true : undefined; }, 90_000, 1000);
  }, 700_000);
}
