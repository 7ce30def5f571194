// Expected: with `collect-garbage = true` the job collects garbage in the node's store once the
// outputs are home: the build's output is gone from the node store after the build, while it is
// valid locally. Without it (the default) the output stays in the node store.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { confWith, jobState, jobsOf, salt, until } from "./helpers.ts";

let lab: ClusterLab;
beforeAll(async () => {
  lab = await startClusterLab("gc");
}, 120000);
afterAll(async () => {
  await lab?.cleanup();
});

const validOnNode = async (p: string) => (await lab.nix.run(["nix-store", "--store", lab.nodeStore, "--check-validity", p])).code === 0;
const validHere = async (p: string) => (await lab.nix.run(["nix-store", "--check-validity", p])).code === 0;

async function buildOne(s: string): Promise<string> {
  const r = await lab.nixBuild([lab.nix.expr("chain"), "--argstr", "salt", s]);
  if (r.code !== 0) console.log(r.stderr);
  expect(r.code).toBe(0);
  return r.stdout.trim();
}

test("collect-garbage = true: the output is gone from the node store, valid here", async () => {
  confWith(lab, { "collect-garbage": "true" });
  try {
    const s = salt();
    const out = await buildOne(s);
    expect(await validHere(out)).toBe(true);
    // The job collects garbage after the hook has the outputs; it ends right after.
    const gone = await until(async () => ((await validOnNode(out)) ? undefined : true), 15000, 200);
    expect(gone).toBe(true);
    for (const j of jobsOf(lab, s)) {
      expect(j.state).toBe("succeeded");
      expect(await until(async () => ((await jobState(lab, j.jobId!)) === "COMPLETED" ? true : undefined), 15000)).toBe(true);
    }
  } finally {
    lab.writeConf();
  }
}, 120000);

test("without collect-garbage the output stays in the node store", async () => {
  lab.writeConf();
  const s = salt();
  const out = await buildOne(s);
  expect(await validHere(out)).toBe(true);
  for (const j of jobsOf(lab, s)) await until(async () => ((await jobState(lab, j.jobId!)) === "COMPLETED" ? true : undefined), 15000);
  expect(await validOnNode(out)).toBe(true);
}, 120000);
