// Expected: with pilot-idle-time set, a build's job stays as an idle pilot and the next build of
// the same shape builds in it (same Slurm job). When that idle pilot is cancelled from outside
// (scancel) the next build still succeeds: it finds the pilot gone, forgets it and submits a job of
// its own. With pilot-idle-time unset (the default) every build has its own job and none stays.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import { startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { jobsOf, salt, squeue, until } from "./helpers.ts";

let lab: ClusterLab;
beforeAll(async () => {
  lab = await startClusterLab("pilot-killed", "slurm");
}, 120000);
afterAll(async () => {
  await lab?.cleanup();
});

async function buildOne(): Promise<string> {
  const s = salt();
  const r = await lab.nixBuild([lab.nix.expr("wide"), "--argstr", "salt", s, "--arg", "n", "1"], 300_000);
  if (r.code !== 0) console.log(r.stderr.slice(-3000));
  expect(r.code).toBe(0);
  expect(fs.readFileSync(r.stdout.trim(), "utf8").trim()).toBe(`wide 0 ${s}`);
  const ids = jobsOf(lab, s).map((j) => j.jobId);
  expect(ids.length).toBe(1);
  return ids[0]!;
}

const stillQueued = async (id: string) => (await squeue(lab)).has(id);

test("off by default: a job per build, none stays", async () => {
  const a = await buildOne();
  const b = await buildOne();
  expect(b).not.toBe(a);
  expect(await until(async () => ((await stillQueued(b)) ? undefined : true), 30_000, 500)).toBe(true);
}, 600_000);

test("an idle pilot is reused; scancelled, the next build submits its own job", async () => {
  lab.writeConf("pilot-idle-time = 120");
  try {
    const first = await buildOne();
    const second = await buildOne();
    expect(second).toBe(first);
    expect(await stillQueued(first)).toBe(true);
    await lab.slurm.run(["scancel", first]);
    expect(await until(async () => ((await stillQueued(first)) ? undefined : true), 30_000, 500)).toBe(true);
    const third = await buildOne();
    expect(third).not.toBe(first);
    await lab.slurm.run(["scancel", third]);
  } finally {
    lab.writeConf();
  }
}, 600_000);
