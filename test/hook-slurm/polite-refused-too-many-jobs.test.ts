// Expected: when slurmctld refuses submits because it holds too many jobs ("Unable to create job
// record, try again", ESLURM_ERROR_ON_DESC_TO_RECORD_COPY 2007: the cluster's MaxJobCount), nsh
// waits and submits again instead of failing the build: both builds succeed after the refusals,
// and the user is told the submit is retried. The lab has no slurmdbd (so no MaxSubmitJobs via
// sacctmgr), and MaxJobCount counts finished jobs until slurmctld purges them (every minute at
// best), so a proxy in front of slurmrestd injects the refusal: slurmrestd's own reply to a
// refused submit, with this error's text and number.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { salt } from "./helpers.ts";
import { startProxy } from "./polite-proxy.ts";

let lab: ClusterLab;
beforeAll(async () => {
  lab = await startClusterLab("polite-too-many-jobs", "slurm");
}, 120000);
afterAll(async () => {
  await lab?.cleanup();
});

test("submits refused for too many jobs: nsh waits, submits again, both builds succeed", async () => {
  const proxy = startProxy(lab, { first: 4, refusals: [{ text: "Unable to create job record, try again", errno: 2007 }] });
  lab.writeConf(`slurm-api-port = ${proxy.port}`);
  try {
    const r = await lab.nixBuild([lab.nix.expr("wide"), "--argstr", "salt", salt(), "--arg", "n", "2", "-j", "2"], 300_000);
    const submits = proxy.seen.filter((x) => x.kind === "submit").length;
    console.log(`exit ${r.code}; ${proxy.refused} submits refused, ${submits} in all`);
    if (r.code !== 0) console.log(r.stderr.slice(-3000));
    expect(proxy.refused).toBe(4);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split("\n").length).toBe(2);
    expect(r.stderr).toMatch(/refused the submit for now .*Unable to create job record.*trying again/);
  } finally {
    proxy.stop();
    lab.writeConf();
  }
}, 360000);
