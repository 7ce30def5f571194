// Expected (real Slurm 22.05 through slurmrestd): 10 jobs followed by 3 nsh processes at once
// through the broker all complete in every process, and slurmrestd is asked about them with one
// GET /jobs per tick at most, never one GET per job (three processes polling each of their jobs
// every 100 ms would make 300 requests a second). A counting HTTP proxy in front of slurmrestd
// sees every request. statusMany's answers agree with status's.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { isTerminal } from "../../src/schedulers/scheduler.ts";
import { SlurmRestScheduler } from "../../src/schedulers/slurm-rest.ts";
import { startSlurmLab, type SlurmLab } from "../lab/slurm.ts";

let lab: SlurmLab;
let token: string;
const root = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-polite-live-"));
const worker = path.join(import.meta.dir, "..", "state", "fixtures", "polite-worker.ts");

beforeAll(async () => {
  lab = await startSlurmLab({ name: "polite" });
  token = await lab.token("root");
}, 120_000);
afterAll(async () => {
  await lab?.cleanup();
  fs.rmSync(root, { recursive: true, force: true });
});

test("10 jobs followed by 3 processes through the broker: all complete, with one GET /jobs per tick at most", async () => {
  const gets: { path: string; at: number }[] = [];
  const upstream = `http://127.0.0.1:${lab.restPort}`;
  const proxy = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const url = new URL(req.url);
      if (req.method === "GET") gets.push({ path: url.pathname, at: Date.now() });
      const body = req.method === "POST" ? await req.text() : undefined;
      const res = await fetch(`${upstream}${url.pathname}${url.search}`, { method: req.method, headers: req.headers, body });
      return new Response(await res.text(), { status: res.status, headers: { "content-type": "application/json" } });
    },
  });
  const procs: ReturnType<typeof Bun.spawn>[] = [];
  try {
    const direct = new SlurmRestScheduler({ host: "127.0.0.1", port: lab.restPort, token, user: "root" });
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const { id } = await direct.submit({
        name: `polite-${i}`,
        script: `#!/bin/sh\nsleep ${1 + (i % 3)}\n`,
        workingDirectory: lab.jobsDir,
        environment: { PATH: "/usr/local/bin:/usr/bin:/bin" },
        stdout: path.join(lab.jobsDir, `polite-${i}-%j.out`),
        timeLimitMinutes: 5,
      });
      ids.push(id);
    }
    const t0 = Date.now();
    for (let p = 0; p < 3; p++) {
      // The JWT goes in the environment, never in argv.
      procs.push(Bun.spawn([process.execPath, worker, "rest-follow", root, String(proxy.port), ids.join(",")], { env: { ...process.env, SLURM_JWT: token }, stdout: "pipe", stderr: "pipe" }));
    }
    const res = await Promise.all(
      procs.map(async (p) => {
        const [out, err, code] = await Promise.all([new Response(p.stdout as ReadableStream).text(), new Response(p.stderr as ReadableStream).text(), p.exited]);
        if (code !== 0) throw new Error(`worker exited ${code}: ${err}`);
        return JSON.parse(out.trim().split("\n").at(-1)!) as { ends: Record<string, string> };
      }),
    );
    const wall = Date.now() - t0;
    for (const r of res) {
      expect(Object.keys(r.ends).sort()).toEqual([...ids].sort());
      for (const st of Object.values(r.ends)) expect(st).toBe("completed");
    }
    for (const st of await Promise.all(ids.map((id) => direct.status(id)))) expect(isTerminal(st.state)).toBe(true);
    const jobGets = gets.filter((g) => /\/job\/\d+$/.test(g.path));
    const listGets = gets.filter((g) => /\/jobs$/.test(g.path)).map((g) => g.at).sort((a, b) => a - b);
    expect(jobGets).toEqual([]);
    expect(listGets.length).toBeGreaterThan(0);
    // One per 100 ms tick, plus one early poll per leader change (at most one per process).
    expect(listGets.length).toBeLessThanOrEqual((listGets.at(-1)! - listGets[0]!) / 100 + 1 + 3);
    const many = await direct.statusMany(ids);
    for (const id of ids) expect(many.get(id)?.state).toBe((await direct.status(id)).state);
    const others = gets.length - listGets.length;
    console.log(`[polite-live] ${gets.length} GETs in ${wall} ms for 10 jobs × 3 processes: ${listGets.length} GET /jobs, ${others} negotiation (openapi/ping)`);
  } finally {
    for (const p of procs) p.kill(9);
    proxy.stop(true);
  }
}, 300_000);
