// The demo, on the local lab (real Nix 2.8, real Slurm 22.05 with slurmrestd, a real OpenPBS, real sshd):
//  1. nix-sigstop stops a memory-hungry evaluation while its import-from-derivation builds run;
//  2. nsh, as Nix's build hook, builds a chain of derivations as scheduler jobs, through each backend:
//     Slurm's REST API, its command-line tools, libslurm; PBS's tools and libpbs.
import fs from "node:fs";
import path from "node:path";
import { startClusterLab, NSH_BIN } from "../test/lab/cluster.ts";
import { startPbsHookLab } from "../test/hook-pbs/lab.ts";
import { startNixLab } from "../test/lab/nix.ts";

const sigstop = path.join(import.meta.dir, "..", "dist", "nix-sigstop");
const say = (s: string) => process.stdout.write(`\n\x1b[1m== ${s}\x1b[0m\n`);
const salt = Date.now().toString(36);

async function sigstopDemo(): Promise<number> {
  const lab = await startNixLab({ daemon: true, name: "demo" });
  try {
    say(`Part 1: nix-sigstop. Nix lab: store ${lab.storeDir}, daemon pid ${lab.daemonPid}`);
    const expr = `let a = import ${lab.expr("ifd-mem")} { salt = "${salt}a"; sleep = "3"; listSize = 3000000; };
      b = import ${lab.expr("ifd-sleep")} { salt = "${salt}b"; sleep = "2"; }; in { a = a.value; inherit (a) sum; b = b.value; }`;
    const report = path.join(lab.root, "report.json");
    say("nix-sigstop --verbose --report report.json eval --store daemon --impure --json --expr '…two IFDs…'");
    const t0 = Date.now();
    const p = Bun.spawn([sigstop, "--verbose", "--report", report, "eval", "--store", "daemon", "--impure", "--json", "--expr", expr], { env: lab.env, stdio: ["ignore", "inherit", "inherit"] });
    const code = await p.exited;
    say(`exit status ${code} after ${((Date.now() - t0) / 1000).toFixed(1)} s; the JSON report:`);
    process.stdout.write(fs.readFileSync(report, "utf8"));
    return code;
  } finally {
    await lab.cleanup();
  }
}

/** One nix-build of the chain through `backend`, then nsh's and the scheduler's view of its jobs. */
async function backendDemo(backend: "slurm" | "slurm-cli" | "slurm-native" | "pbs-cli" | "pbs"): Promise<number> {
  const pbs = backend.startsWith("pbs");
  say(`Part 2: nsh as build hook, job-scheduler = ${backend} (starting ${pbs ? "OpenPBS in its own network namespace" : "munge, slurmctld, slurmd, slurmrestd"}, sshd, nix-daemon)`);
  const lab = pbs ? await startPbsHookLab(backend as "pbs" | "pbs-cli", `demo-${backend}`) : await startClusterLab(`demo-${backend}`, backend as "slurm");
  try {
    process.stdout.write(`nsh.conf (${lab.nshConf}):\n${fs.readFileSync(lab.nshConf, "utf8").replace(/^/gm, "  ")}`);
    say(`nix-build --store daemon --option build-hook ${NSH_BIN} chain.nix   (two derivations with requiredSystemFeatures = ["nsh"])`);
    const t0 = Date.now();
    const r = await lab.nixBuild([lab.nix.expr("chain"), "--argstr", "salt", `${salt}-${backend}`]);
    process.stderr.write(r.stderr);
    const out = r.stdout.trim();
    say(`exit status ${r.code} after ${((Date.now() - t0) / 1000).toFixed(1)} s; ${out} contains: ${r.code === 0 ? fs.readFileSync(out, "utf8").trim() : "-"}`);
    say("nsh jobs --all   (each build's job, node and phases)");
    const jobs = Bun.spawnSync([NSH_BIN, "jobs", "--all"], { env: { ...lab.nix.env, NSH_CONF: lab.nshConf } });
    process.stdout.write(jobs.stdout.toString());
    if (!pbs && "slurm" in lab) {
      say("Slurm's own view (squeue -t all)");
      process.stdout.write((await lab.slurm.run(["squeue", "-t", "all", "-o", "%.6i %.24j %.10T %.8M %R"])).stdout);
    }
    return r.code ?? 1;
  } finally {
    await lab.cleanup();
  }
}

const a = await sigstopDemo();
const codes: Record<string, number> = {};
for (const backend of ["slurm", "slurm-cli", "slurm-native", "pbs-cli", "pbs"] as const) codes[backend] = await backendDemo(backend);
say(`nix-sigstop: exit ${a}; the chain through each backend: ${Object.entries(codes).map(([k, v]) => `${k} ${v}`).join(", ")}`);
process.exitCode = a || Object.values(codes).find((c) => c !== 0) || 0;
