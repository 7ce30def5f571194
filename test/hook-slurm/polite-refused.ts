// The scenario both polite-refused-*.test.ts files run: a proxy in front of slurmrestd answers the
// first four submits with one of slurmctld's "not now" refusals; nsh must wait, submit again and
// build both derivations, telling the user the submit is retried.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { salt } from "./helpers.ts";
import { type Refusal, startProxy } from "./polite-proxy.ts";

export function refusedSubmitsScenario(labName: string, title: string, refusal: Refusal, says: RegExp): void {
  let lab: ClusterLab;
  beforeAll(async () => {
    lab = await startClusterLab(labName, "slurm");
  }, 120000);
  afterAll(async () => {
    await lab?.cleanup();
  });

  test(title, async () => {
    const proxy = startProxy(lab, { first: 4, refusals: [refusal] });
    lab.writeConf(`slurm-api-port = ${proxy.port}`);
    try {
      const r = await lab.nixBuild([lab.nix.expr("wide"), "--argstr", "salt", salt(), "--arg", "n", "2", "-j", "2"], 300_000);
      const submits = proxy.seen.filter((x) => x.kind === "submit").length;
      console.log(`exit ${r.code}; ${proxy.refused} submits refused, ${submits} in all`);
      if (r.code !== 0) console.log(r.stderr.slice(-3000));
      expect(proxy.refused).toBe(4);
      expect(r.code).toBe(0);
      expect(r.stdout.trim().split("\n").length).toBe(2);
      expect(r.stderr).toMatch(says);
    } finally {
      proxy.stop();
      lab.writeConf();
    }
  }, 360000);
}
