// Expected: nix-sigstop with nsh as the actual build hook (`--build-hook dist/nsh`, through the
// lab's daemon) relays an import-from-derivation build to nsh, which builds it as a Slurm job (the
// generator requires the "nsh" feature); nix is stopped while it waits (report: one build,
// reply "accept", ok; stops == 1) and the evaluation's result is right. Interrupting nix-sigstop
// (SIGINT) while the stopped nix waits for that job cancels the job within 10 s.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { NSH_BIN, startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { jobState, jobsOf, salt, until, jobInState } from "./helpers.ts";

const SIGSTOP = path.join(path.dirname(NSH_BIN), "nix-sigstop");

let lab: ClusterLab;
beforeAll(async () => {
  lab = await startClusterLab("sigstop");
}, 120000);
afterAll(async () => {
  await lab?.cleanup();
});

interface Report {
  stops: number;
  builds: { drv: string; reply: string; ok?: boolean }[];
}

test("the IFD is built through Slurm while nix is stopped", async () => {
  const s = salt();
  const rep = path.join(lab.nix.root, `report-${s}.json`);
  const expr = `import ${lab.nix.expr("ifd-nsh")} { salt = "${s}"; sleep = "2"; }`;
  const p = Bun.spawn([SIGSTOP, "--report", rep, "eval", "--store", "daemon", "--build-hook", NSH_BIN, "--impure", "--json", "--expr", expr], {
    env: lab.nix.env,
    cwd: lab.nix.root,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const timer = setTimeout(() => p.kill("SIGKILL"), 90000);
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  clearTimeout(timer);
  if (code !== 0) console.log(stderr);
  expect(code).toBe(0);
  const v = JSON.parse(stdout) as { value: string; n: number; drvPath: string };
  expect(v.value).toBe(`nsh-ifd-${s}`);
  expect(v.n).toBe(42);
  // nix-sigstop saw nsh accept the build and stopped nix meanwhile.
  const r = JSON.parse(fs.readFileSync(rep, "utf8")) as Report;
  expect(r.builds.map((b) => [b.drv, b.reply, b.ok])).toEqual([[v.drvPath, "accept", true]]);
  expect(r.stops).toBe(1);
  // It was a Slurm job, built in the node's store.
  const [rec] = jobsOf(lab, s);
  expect(rec?.state).toBe("succeeded");
  expect(rec?.jobId).toBeDefined();
  const out = (await lab.nix.run(["nix-store", "-q", "--outputs", v.drvPath])).stdout.trim();
  expect((await lab.nix.run(["nix-store", "--store", lab.nodeStore, "--check-validity", out])).code).toBe(0);
}, 120000);

test("SIGINT to nix-sigstop while the IFD job runs cancels the job", async () => {
  const s = salt();
  const expr = `import ${lab.nix.expr("ifd-nsh")} { salt = "${s}"; sleep = "60"; }`;
  const p = Bun.spawn([SIGSTOP, "--quiet", "eval", "--store", "daemon", "--build-hook", NSH_BIN, "--impure", "--json", "--expr", expr], {
    env: lab.nix.env,
    cwd: lab.nix.root,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const stderr = new Response(p.stderr).text();
  try {
    const id = await jobInState(lab, s, "RUNNING");
    expect(id).toBeDefined();
    await Bun.sleep(1000);
    const t0 = performance.now();
    p.kill("SIGINT");
    const ended = await until(async () => {
      const st = await jobState(lab, id!);
      return st === "CANCELLED" || st === "COMPLETED" ? st : undefined;
    }, 10000, 50);
    console.log(`SIGINT nix-sigstop while RUNNING: job ${id} ${ended ?? "still there"} ${Math.round(performance.now() - t0)} ms after the signal`);
    expect(ended).toBe("CANCELLED");
    expect(await p.exited).not.toBe(0);
  } finally {
    p.kill("SIGKILL");
    void stderr;
  }
}, 60000);
