// The demo, on the local lab (real Nix 2.8, real Slurm 22.05 with slurmrestd, real sshd):
//  1. nix-sigstop stops a memory-hungry evaluation while its import-from-derivation builds run;
//  2. nsh, as Nix's build hook, builds a chain of derivations as Slurm jobs.
import fs from "node:fs";
import path from "node:path";
import { startClusterLab, NSH_BIN } from "../test/lab/cluster.ts";
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

async function slurmDemo(): Promise<number> {
  say("Part 2: nsh as build hook, building through Slurm (starting munge, slurmctld, slurmd, slurmrestd, sshd, nix-daemon)");
  const lab = await startClusterLab("demo");
  try {
    process.stdout.write(`nsh.conf (${lab.nshConf}):\n${fs.readFileSync(lab.nshConf, "utf8").replace(/^/gm, "  ")}`);
    say(`nix-build --store daemon --option build-hook ${NSH_BIN} chain.nix   (two derivations with requiredSystemFeatures = ["nsh"])`);
    const t0 = Date.now();
    const p = Bun.spawn(["nix-build", "--store", "daemon", "--option", "build-hook", NSH_BIN, "--no-out-link", lab.nix.expr("chain"), "--argstr", "salt", salt], { env: lab.nix.env, stdio: ["ignore", "pipe", "inherit"] });
    const out = (await new Response(p.stdout).text()).trim();
    const code = await p.exited;
    say(`exit status ${code} after ${((Date.now() - t0) / 1000).toFixed(1)} s; ${out} contains: ${code === 0 ? fs.readFileSync(out, "utf8").trim() : "-"}`);
    say("nsh jobs --all   (each build's job, node and phases)");
    const jobs = Bun.spawnSync([NSH_BIN, "jobs", "--all"], { env: { ...lab.nix.env, NSH_CONF: lab.nshConf } });
    process.stdout.write(jobs.stdout.toString());
    say("Slurm's own view (squeue -t all)");
    process.stdout.write((await lab.slurm.run(["squeue", "-t", "all", "-o", "%.6i %.24j %.10T %.8M %R"])).stdout);
    return code;
  } finally {
    await lab.cleanup();
  }
}

const a = await sigstopDemo();
const b = await slurmDemo();
process.exitCode = a || b;
