// Expected: when the hook is killed (SIGINT to nix-build; Nix ≤ 2.34 SIGKILLs the hook) while
// slurmrestd cannot cancel jobs for a while (here a proxy in front of it fails every DELETE for
// 20 s, as a restarting slurmrestd or an overloaded slurmctld would), nsh's reaper keeps retrying
// the cancel until Slurm shows the job ended, instead of giving up after a few tries; the job is
// CANCELLED and `nsh jobs` records it as cancelled by the reaper. The job is submitted held, so it
// never starts: a running job's agent would end it by itself once its hook is gone, and the reaper's
// retries would go untested (seen on a loaded machine: the job FAILED before the cancel went through).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { NSH_BIN, startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { jobEnded, jobInState, jobsOf, salt, until } from "./helpers.ts";

let lab: ClusterLab;
beforeAll(async () => {
  lab = await startClusterLab("reaper-retry");
}, 120000);
afterAll(async () => {
  await lab?.cleanup();
});

test("cancels failing for 20 s after the hook died: the reaper retries until the job is cancelled", async () => {
  const FAIL_FOR_MS = 20_000;
  let firstDelete = 0;
  let refused = 0;
  const upstream = `http://127.0.0.1:${lab.slurm.restPort}`;
  const proxy = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const url = new URL(req.url);
      if (req.method === "DELETE") {
        firstDelete ||= Date.now();
        if (Date.now() - firstDelete < FAIL_FOR_MS) {
          refused++;
          return new Response("<html>503 Service Unavailable</html>", { status: 503, headers: { "content-type": "text/html" } });
        }
      }
      const body = req.method === "POST" ? await req.text() : undefined;
      const res = await fetch(`${upstream}${url.pathname}${url.search}`, { method: req.method, headers: req.headers, body });
      return new Response(await res.text(), { status: res.status, headers: { "content-type": "application/json" } });
    },
  });
  lab.writeConf(`slurm-api-port = ${proxy.port}`);
  const s = salt();
  const p = Bun.spawn(["nix-build", "--store", "daemon", "--option", "build-hook", NSH_BIN, "--no-out-link", lab.nix.expr("slurm-job"), "--argstr", "salt", s, "--argstr", "params", `{"hold": true, "comment": "held-${s}"}`], {
    env: lab.nix.env,
    cwd: lab.nix.root,
    stdio: ["ignore", "pipe", "pipe"],
  });
  try {
    const id = await jobInState(lab, s, "PENDING", 60_000);
    expect(id).toBeDefined();
    p.kill("SIGINT");
    const ended = await jobEnded(lab, id!, FAIL_FOR_MS + 60_000);
    console.log(`job ${id}: ${ended ?? "still there"} after ${refused} refused cancels`);
    expect(refused).toBeGreaterThan(0);
    expect(ended).toBe("CANCELLED");
    const rec = await until(() => {
      const r = jobsOf(lab, s)[0];
      return r?.state === "cancelled" ? r : undefined;
    }, 10_000);
    expect(rec?.message).toContain("reaper cancelled");
  } finally {
    p.kill("SIGKILL");
    proxy.stop(true);
    lab.writeConf();
  }
}, 200000);
