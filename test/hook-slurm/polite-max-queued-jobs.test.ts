// Expected: with max-queued-jobs = 2, six builds at once (-j 6) never have more than 2 of nsh's
// jobs waiting in Slurm's queue: at the cap the hook answers Nix `# postpone` (Nix asks again
// later) instead of submitting, and all six builds succeed. Each job asks for all 16 CPUs of the
// lab's node, so only one runs at a time and the others would queue: without the cap, up to 5
// would wait in the queue at once.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { salt, squeue } from "./helpers.ts";

let lab: ClusterLab;
beforeAll(async () => {
  lab = await startClusterLab("polite-max-queued");
}, 120000);
afterAll(async () => {
  await lab?.cleanup();
});

test("max-queued-jobs = 2 with 6 builds: never more than 2 jobs pending, all succeed", async () => {
  lab.writeConf("max-queued-jobs = 2");
  const s = salt();
  const args = `salt = "${s}-\${toString i}"; cpus = 16; sleep = "1"; attr = "${lab.paramsAttr}";`;
  const expr = `map (i: import ${lab.nix.expr("slurm-job")} { ${args} }) [1 2 3 4 5 6]`;
  let watching = true;
  let mostPending = 0;
  let seen = 0;
  const watcher = (async () => {
    while (watching) {
      const q = await squeue(lab);
      const pending = [...q.values()].filter((st) => st === "PENDING").length;
      mostPending = Math.max(mostPending, pending);
      seen = Math.max(seen, q.size);
      await Bun.sleep(50);
    }
  })();
  try {
    const r = await lab.nixBuild(["-E", expr, "-j", "6"], 300_000);
    watching = false;
    await watcher;
    console.log(`exit ${r.code}; at most ${mostPending} jobs pending (${seen} in the queue at once)`);
    if (r.code !== 0) console.log(r.stderr.slice(-3000));
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split("\n").length).toBe(6);
    expect(mostPending).toBeGreaterThan(0);
    expect(mostPending).toBeLessThanOrEqual(2);
  } finally {
    watching = false;
    lab.writeConf();
  }
}, 360000);
