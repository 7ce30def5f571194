// Expected: when the build is interrupted while nsh's submit request is on its way (Slurm has
// created the job, its answer has not reached the hook), the job is still gone within 10 s: the
// job carries a tag (in its comment) and nsh's reaper, which never heard a job id, finds it by
// that tag and cancels it; `nsh jobs` records it as cancelled. A proxy in front of slurmrestd
// holds back the answer to the submit to open that window.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { NSH_BIN, startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { jobEnded, jobState, jobsOf, salt, until } from "./helpers.ts";

let lab: ClusterLab;
beforeAll(async () => {
  lab = await startClusterLab("kill-submit");
}, 120000);
afterAll(async () => {
  await lab?.cleanup();
});

test("SIGINT while the submit's answer is held back: the reaper finds the job by its tag and cancels it", async () => {
  const submitted = Promise.withResolvers<string>();
  const upstream = `http://127.0.0.1:${lab.slurm.restPort}`;
  const proxy = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const url = new URL(req.url);
      const res = await fetch(`${upstream}${url.pathname}${url.search}`, { method: req.method, headers: req.headers, body: req.method === "POST" ? await req.text() : undefined });
      const body = await res.text();
      if (req.method === "POST" && url.pathname.endsWith("/job/submit")) {
        submitted.resolve(String((JSON.parse(body) as { job_id?: number }).job_id));
        await Bun.sleep(30_000); // the hook is killed long before this answer would arrive
      }
      return new Response(body, { status: res.status, headers: { "content-type": "application/json" } });
    },
  });
  lab.writeConf(`slurm-api-port = ${proxy.port}`);
  const s = salt();
  const p = Bun.spawn(["nix-build", "--store", "daemon", "--option", "build-hook", NSH_BIN, "--no-out-link", lab.nix.expr("slurm-job"), "--argstr", "salt", s, "--argstr", "sleep", "60"], {
    env: lab.nix.env,
    cwd: lab.nix.root,
    stdio: ["ignore", "pipe", "pipe"],
  });
  try {
    const id = await Promise.race([submitted.promise, Bun.sleep(60_000).then(() => undefined)]);
    expect(id).toBeDefined();
    expect(["PENDING", "RUNNING", "CONFIGURING"]).toContain(await jobState(lab, id!));
    // The hook has no job id yet: its record still says it is submitting.
    expect(jobsOf(lab, s)[0]?.jobId).toBeUndefined();
    const t0 = performance.now();
    p.kill("SIGINT");
    const ended = await jobEnded(lab, id!);
    const ms = Math.round(performance.now() - t0);
    console.log(`SIGINT during the submit: job ${id} ${ended ?? "still there"} ${ms} ms after the signal`);
    expect(ended).toBe("CANCELLED");
    const rec = await until(() => {
      const r = jobsOf(lab, s)[0];
      return r?.state === "cancelled" ? r : undefined;
    }, 5000);
    expect(rec?.message).toContain("nsh's reaper cancelled the job");
  } finally {
    p.kill("SIGKILL");
    proxy.stop(true);
    lab.writeConf();
  }
}, 120000);
