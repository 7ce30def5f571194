// Expected: when the hook is SIGKILLed (as Nix ≤ 2.34 does on Ctrl-C) while its submit request is
// still on its way, and Slurm creates the job only after the hook is gone, nsh's reaper still finds
// the job by its tag and cancels it: it keeps looking for as long as the submit request could still
// succeed (the request timeout, 20 s), not a few seconds. A proxy in front of slurmrestd holds the
// POST /job/submit for 10 s before forwarding it, so the job appears well after the hook died.
// Afterwards none of nsh's tagged jobs is left in the queue. The same holds when the hook gets
// SIGTERM (Nix ≥ 2.35) instead: it gives up waiting for the submit's answer after 2 s and exits,
// leaving the search to the reaper rather than telling it all is done.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { NSH_BIN, startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { isAlive } from "../lab/proc.ts";
import { jobEnded, jobsOf, salt, until } from "./helpers.ts";

let lab: ClusterLab;
beforeAll(async () => {
  lab = await startClusterLab("kill-late");
}, 120000);
afterAll(async () => {
  await lab?.cleanup();
});

/** Jobs Slurm still has queued or running whose comment carries an nsh tag. */
async function taggedLeft(): Promise<string[]> {
  const r = await lab.slurm.run(["squeue", "-h", "-o", "%i %k"]);
  return r.stdout.split("\n").filter((l) => /\bnsh:/.test(l)).map((l) => l.trim().split(/\s+/)[0]!);
}

test.each(["SIGKILL", "SIGTERM"] as const)("%s of the hook before Slurm has the job: the job that appears later is cancelled", async (signal) => {
  const HOLD_MS = 10_000;
  const arrived = Promise.withResolvers<void>();
  const created = Promise.withResolvers<string>();
  const upstream = `http://127.0.0.1:${lab.slurm.restPort}`;
  const proxy = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const url = new URL(req.url);
      const body = req.method === "POST" ? await req.text() : undefined;
      const submit = req.method === "POST" && url.pathname.endsWith("/job/submit");
      if (submit) {
        // The request is in the network (or a slow slurmrestd) while the hook dies; it goes on anyway.
        arrived.resolve();
        await Bun.sleep(HOLD_MS);
      }
      const res = await fetch(`${upstream}${url.pathname}${url.search}`, { method: req.method, headers: req.headers, body });
      const text = await res.text();
      if (submit) created.resolve(String((JSON.parse(text) as { job_id?: number }).job_id));
      return new Response(text, { status: res.status, headers: { "content-type": "application/json" } });
    },
  });
  lab.writeConf(`slurm-api-port = ${proxy.port}`);
  const s = salt();
  const p = Bun.spawn(["nix-build", "--store", "daemon", "--option", "build-hook", NSH_BIN, "--no-out-link", lab.nix.expr("slurm-job"), "--argstr", "salt", s, "--argstr", "sleep", "120"], {
    env: lab.nix.env,
    cwd: lab.nix.root,
    stdio: ["ignore", "pipe", "pipe"],
  });
  try {
    expect(await Promise.race([arrived.promise.then(() => true), Bun.sleep(90_000).then(() => false)])).toBe(true);
    const hookPid = jobsOf(lab, s)[0]?.hookPid;
    expect(hookPid).toBeGreaterThan(0);
    process.kill(hookPid!, signal);
    expect(await until(() => (isAlive(hookPid!) ? undefined : true), HOLD_MS - 2000)).toBe(true);
    // Only now, with the hook gone, does Slurm get the request and create the job.
    const id = await Promise.race([created.promise, Bun.sleep(HOLD_MS + 30_000).then(() => undefined)]);
    expect(id).toMatch(/^\d+$/);
    const ended = await jobEnded(lab, id!, 60_000);
    console.log(`job ${id} created ~${HOLD_MS / 1000} s after the hook's ${signal}: ${ended ?? "still there"}`);
    expect(ended).toBe("CANCELLED");
    expect(await until(async () => ((await taggedLeft()).length === 0 ? true : undefined), 30_000)).toBe(true);
    const rec = await until(() => {
      const r = jobsOf(lab, s)[0];
      return r?.state === "cancelled" ? r : undefined;
    }, 10_000);
    expect(rec?.state).toBe("cancelled");
  } finally {
    p.kill("SIGKILL");
    proxy.stop(true);
    lab.writeConf();
  }
}, 240000);
