// Expected: a wide build (20 derivations, -j 20, 20 hooks at once) through the REST backend asks
// slurmrestd for job states in batches: one GET /jobs per broker tick for all of this machine's
// jobs, so far fewer status requests than one per build per tick; a GET of one job only for a job's
// start notice that the broker's leader did not answer within 150 ms, at most one per build; and all
// requests that reach slurmctld together (submits, queries, cancels, pings) stay within the default scheduler-rate
// (28 at once, 1.8/s, below Slurm's own per-user limit of 30 and 2/s). Every build succeeds.
// A hook whose token an earlier hook's ping proved a moment ago sends no ping of its own.
// A counting proxy sees every request.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { DEFAULT_RATE } from "../../src/state/rate-limit.ts";
import { startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { salt } from "./helpers.ts";
import { overdraft, startProxy } from "./polite-proxy.ts";

let lab: ClusterLab;
beforeAll(async () => {
  lab = await startClusterLab("polite-wide", "slurm");
}, 120000);
afterAll(async () => {
  await lab?.cleanup();
});

test("20 builds at once: status requests batched, all requests within the rate budget", async () => {
  // A fresh node store created by 20 Nix processes at once can end up "corrupt" (Nix 2.8's schema
  // race in a new chroot store): one build first, as a real node's store exists already.
  const proxy = startProxy(lab);
  lab.writeConf(`slurm-api-port = ${proxy.port}`);
  try {
    const warm = await lab.nixBuild([lab.nix.expr("wide"), "--argstr", "salt", `warm${salt()}`, "--arg", "n", "1"]);
    expect(warm.code).toBe(0);
    proxy.seen.length = 0;
    const s = salt();
    const t0 = Date.now();
    const r = await lab.nixBuild([lab.nix.expr("wide"), "--argstr", "salt", s, "--arg", "n", "20", "-j", "20"], 600_000);
    const seconds = (Date.now() - t0) / 1000;
    const count = (k: string) => proxy.seen.filter((x) => x.kind === k).length;
    const counts = Object.fromEntries(["submit", "status-list", "status-one", "cancel", "ping", "other"].map((k) => [k, count(k)]));
    console.log(`20 builds in ${seconds.toFixed(1)} s; requests: ${JSON.stringify(counts)}`);
    if (r.code !== 0) console.log(r.stderr.slice(-3000));
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split("\n").length).toBe(20);
    expect(counts.submit).toBe(20);
    // The warm-up build's ping proved the token: the 20 hooks after it spend no request on pings.
    expect(counts.ping).toBe(0);
    // Batched: the lists are far fewer than one per build per 100 ms tick; a per-job request only for
    // a start notice the broker did not answer at once, at most one per build.
    expect(counts["status-one"]).toBeLessThanOrEqual(20);
    expect(counts["status-list"]).toBeLessThan(20 * seconds);
    // One token of slack: a request may reach the proxy a moment after its token was taken.
    const budgeted = proxy.seen.filter((x) => x.kind !== "other").map((x) => x.at);
    const over = overdraft(budgeted, DEFAULT_RATE.burst, DEFAULT_RATE.perSecond);
    console.log(`largest overdraft of the ${DEFAULT_RATE.burst} / ${DEFAULT_RATE.perSecond} per s budget: ${over.toFixed(2)}`);
    expect(over).toBeLessThanOrEqual(1);
  } finally {
    proxy.stop();
    lab.writeConf();
  }
}, 660000);
