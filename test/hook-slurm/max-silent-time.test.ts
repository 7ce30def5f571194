// Expected: Nix's `max-silent-time` is enforced where the build runs. nsh passes it with
// BuildDerivation to the node's `nix-store --serve` in the Slurm job, which kills a builder that
// prints one line and then stays silent after ~5 s, answering TimedOut with Nix's own message
// ("timed out after 5 seconds of silence"); the hook exits 101 (through the daemon Nix 2.8 shows
// "failed with exit code 101" and nix-build exits 1, as for its own local builds). The line it
// printed is in the output, the builder is gone from the node, the job from squeue, and `nsh jobs`
// records the failure. A builder that prints every second for longer than max-silent-time is not
// silent: it succeeds (silence is measured on the build's output, not as a total time).
// Nix 2.34 words it "timed out after 5 seconds" and reads no hook status (nsh exits 1 there):
// test/lab/nix-words.ts.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { hookTimeoutStatus, silenceWords } from "../lab/nix-words.ts";
import { hasStackTrace, jobsOf, salt, squeue, until } from "./helpers.ts";

let lab: ClusterLab;
beforeAll(async () => {
  lab = await startClusterLab("silent");
}, 120000);
afterAll(async () => {
  await lab?.cleanup();
});

const running = async (pattern: string) => (await lab.slurm.run(["pgrep", "-f", pattern])).stdout.trim() !== "";

test("max-silent-time 5: a builder silent after one line is killed on the node after ~5 s", async () => {
  const s = salt();
  const sleep = `60.${Math.floor(Math.random() * 9000 + 1000)}`;
  const t0 = performance.now();
  const build = lab.nixBuild([lab.nix.expr("slurm-job"), "--argstr", "salt", s, "--argstr", "script", `echo once-${s}; /bin/sleep ${sleep}`, "--option", "max-silent-time", "5"]);
  expect(await until(async () => ((await running(`sleep ${sleep}`)) ? true : undefined), 20000)).toBe(true);
  const r = await build;
  const ms = performance.now() - t0;
  const v = lab.nix.nixVersionNumbers;
  if (!silenceWords(v, 5).test(r.stderr)) console.log(r.stderr);
  console.log(`silent build: nix-build exited ${r.code} after ${Math.round(ms)} ms`);
  expect(r.timedOut).toBe(false);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain(`once-${s}`);
  expect(r.stderr).toMatch(silenceWords(v, 5));
  expect(r.stderr).toContain(`failed with exit code ${hookTimeoutStatus(v)}`);
  expect(hasStackTrace(r.stderr)).toBe(false);
  expect(ms).toBeLessThan(30000);
  expect(await until(async () => ((await running(`sleep ${sleep}`)) ? undefined : true), 5000)).toBe(true);
  const [rec] = jobsOf(lab, s);
  expect(rec?.state).toBe("failed");
  expect(rec?.message).toMatch(new RegExp(`${silenceWords(v, 5).source}$`));
  expect(rec?.phases.build).toBeGreaterThanOrEqual(4.5);
  expect(rec?.phases.build).toBeLessThan(15);
  expect(await until(async () => ((await squeue(lab)).has(rec!.jobId!) ? undefined : true), 10000)).toBe(true);
}, 120000);

test("max-silent-time 3: a builder printing every second for 6 s is not silent and succeeds", async () => {
  const s = salt();
  const script = `for i in 1 2 3 4 5 6; do echo tick-$i; /bin/sleep 1; done; echo done-${s} > $out`;
  const r = await lab.nixBuild([lab.nix.expr("slurm-job"), "--argstr", "salt", s, "--argstr", "script", script, "--option", "max-silent-time", "3"]);
  if (r.code !== 0) console.log(r.stderr);
  expect(r.code).toBe(0);
  expect(r.stderr).toContain("tick-6");
  expect(jobsOf(lab, s)[0]?.state).toBe("succeeded");
}, 120000);
