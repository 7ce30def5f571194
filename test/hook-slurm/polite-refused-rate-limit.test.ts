// Expected: when slurmctld answers submits with its rate-limit refusal ("Rate limit exceeded,
// please retry momentarily", SLURMCTLD_COMMUNICATIONS_BACKOFF 1804: Slurm ≥ 23.02 with
// SlurmctldParameters=rl_enable), nsh waits and submits again instead of failing the build: both
// builds succeed after the refusals, and the user is told the submit is retried. Slurm 22.05 in the
// lab has no rate limit, so a proxy in front of slurmrestd injects the refusal: slurmrestd's own
// reply to a refused submit, with the rate limit's text and number.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { salt } from "./helpers.ts";
import { startProxy } from "./polite-proxy.ts";

let lab: ClusterLab;
beforeAll(async () => {
  lab = await startClusterLab("polite-rate-limited", "slurm");
}, 120000);
afterAll(async () => {
  await lab?.cleanup();
});

test("submits refused by the rate limit: nsh waits, submits again, both builds succeed", async () => {
  const proxy = startProxy(lab, { first: 4, refusals: [{ text: "Rate limit exceeded, please retry momentarily", errno: 1804 }] });
  lab.writeConf(`slurm-api-port = ${proxy.port}`);
  try {
    const r = await lab.nixBuild([lab.nix.expr("wide"), "--argstr", "salt", salt(), "--arg", "n", "2", "-j", "2"], 300_000);
    const submits = proxy.seen.filter((x) => x.kind === "submit").length;
    console.log(`exit ${r.code}; ${proxy.refused} submits refused, ${submits} in all`);
    if (r.code !== 0) console.log(r.stderr.slice(-3000));
    expect(proxy.refused).toBe(4);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split("\n").length).toBe(2);
    expect(r.stderr).toMatch(/refused the submit for now .*Rate limit exceeded.*trying again/);
  } finally {
    proxy.stop();
    lab.writeConf();
  }
}, 360000);
