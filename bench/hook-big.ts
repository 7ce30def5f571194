// hook-big: one build whose input and output are big (default 512 MiB each, random bytes), through
// nsh on the lab Slurm (big NARs through OpenSSH: openssh-min-size 64M, the default), through nsh
// with openssh-min-size = 0 (everything on ssh2), and through Nix's build-remote over ssh://. Each
// run gets a fresh input, added to the local store (and synced) before the clock starts, so all three
// copy it to the builder and copy the output back. Rounds interleave the variants in rotated order.
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { startClusterLab, type ClusterLab } from "../test/lab/cluster.ts";
import { buildersLine } from "../test/lab/sshd.ts";
import { EXPR, MiB, envNumber, max, median, min, salt, sigstopBin, table, tail, timed, type Bench, type BenchResult } from "./lib.ts";

type Variant = "nsh" | "nsh-ssh2" | "br";
const LABEL: Record<Variant, string> = { nsh: "nsh, big NARs via OpenSSH (default)", "nsh-ssh2": "nsh, openssh-min-size = 0 (ssh2 only)", br: "build-remote (ssh://)" };
const VARIANTS: Variant[] = ["nsh", "nsh-ssh2", "br"];
type Run = { variant: Variant; round: number; ms: number; ok: boolean; why?: string; phases?: Record<string, number> };

const rotate = <T>(xs: T[], k: number): T[] => [...xs.slice(k % xs.length), ...xs.slice(0, k % xs.length)];
const fmt = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : "–");

/** A file of `bytes` random bytes, written in 8 MiB pieces. */
function randomFile(file: string, bytes: number): void {
  const fd = fs.openSync(file, "w");
  try {
    for (let left = bytes; left > 0; left -= 8 * MiB) fs.writeSync(fd, crypto.randomBytes(Math.min(left, 8 * MiB)));
  } finally {
    fs.closeSync(fd);
  }
}

export const hookBig: Bench = {
  name: "hook-big",
  title: "one build with a big input and output: nsh (OpenSSH bulk), nsh (ssh2 only), build-remote over ssh",
  async run(): Promise<BenchResult> {
    const rounds = envNumber("NSH_BENCH_ROUNDS", 3);
    const sizeMiB = envNumber("NSH_BENCH_BIG_MIB", 512);
    const timeoutMs = envNumber("NSH_BENCH_TIMEOUT", 600) * 1000;
    const nsh = path.join(path.dirname(sigstopBin()), "nsh");
    const lab: ClusterLab = await startClusterLab("bench-hook-big");
    try {
      const env = lab.nix.env;
      const line = buildersLine(lab.sshd, { features: ["nsh"], maxJobs: 1, remoteStore: `${lab.sshd.remoteStore}&system-features=nsh` });
      const baseConf = fs.readFileSync(lab.nshConf, "utf8");
      const runs: Run[] = [];
      const one = async (v: Variant, round: number): Promise<Run> => {
        const s = salt();
        const file = path.join(lab.nix.root, `big-${s}`);
        randomFile(file, sizeMiB * MiB);
        const added = await lab.nix.run(["nix-store", "--store", "daemon", "--add", file], { timeoutMs });
        fs.rmSync(file);
        if (added.code !== 0) throw new Error(`nix-store --add: ${added.stderr.trim()}`);
        const src = added.stdout.trim();
        fs.writeFileSync(lab.nshConf, `${baseConf}\n${v === "nsh-ssh2" ? "openssh-min-size = 0" : ""}\n`);
        Bun.spawnSync(["sync"]);
        const argv = ["nix-build", "--store", "daemon", "--no-out-link", path.join(EXPR, "hook-big.nix"), "--argstr", "salt", s, "--argstr", "src", src];
        const r = await timed(v === "br" ? [...argv, "--max-jobs", "0", "--builders", line] : [...argv, "--option", "build-hook", nsh], env, { timeoutMs });
        const out = r.stdout.trim().split("\n").at(-1) ?? "";
        let why = r.timedOut ? "timed out" : r.code !== 0 ? `exit ${r.code ?? r.signal}` : undefined;
        if (!why && (!fs.existsSync(out) || fs.statSync(out).size !== sizeMiB * MiB)) why = `exit 0, but ${out || "no output"} is not ${sizeMiB} MiB`;
        const run: Run = { variant: v, round, ms: r.ms, ok: !why, why };
        if (v !== "br" && !why) {
          const jobs = Bun.spawnSync([nsh, "jobs", "--all", "--json"], { env: { ...env, NSH_CONF: lab.nshConf } }).stdout.toString();
          run.phases = jobs.split("\n").filter(Boolean).map((l) => JSON.parse(l)).find((j) => String(j.drv).includes(s))?.phases;
        }
        process.stderr.write(`  ${round === 0 ? "warm-up" : `round ${round}/${rounds}`}: ${LABEL[v]}: ${run.ok ? `${r.ms.toFixed(0)} ms` : `FAILED (${why})\n${tail(r.stderr, 1500)}`}\n`);
        // Keep the disk from filling: the paths go from every store they reached.
        for (const store of ["daemon", lab.nodeStore, lab.sshd.remoteStore]) await lab.nix.run(["nix-store", "--store", store, "--delete", ...(out ? [out] : []), src], { timeoutMs });
        return run;
      };
      for (const v of VARIANTS) await one(v, 0);
      for (let round = 1; round <= rounds; round++) for (const v of rotate(VARIANTS, round - 1)) runs.push(await one(v, round));

      const ok = (v: Variant) => runs.filter((r) => r.variant === v && r.ok).map((r) => r.ms);
      const brMs = median(ok("br"));
      const rows = VARIANTS.map((v) => [LABEL[v], `${ok(v).length}/${rounds}`, fmt(min(ok(v))), fmt(median(ok(v))), fmt(max(ok(v))), (median(ok(v)) / brMs).toFixed(3)]);
      const phaseRows = (["nsh", "nsh-ssh2"] as Variant[]).map((v) => {
        const ps = runs.filter((r) => r.variant === v && r.phases);
        const p = (k: string) => median(ps.map((r) => r.phases![k] ?? Number.NaN)).toFixed(2);
        return [LABEL[v], p("queue"), p("upload"), p("build"), p("download")];
      });
      return {
        tables: [
          table([`one build, ${sizeMiB} MiB in and out`, "ok runs", "min ms", "median ms", "max ms", "ratio to build-remote (medians)"], rows),
          table(["nsh phases (median s, from nsh jobs)", "queue", "upload", "build", "download"], phaseRows),
        ],
        notes: [`Input and output ${sizeMiB} MiB each; ${rounds} rounds after a warm-up of each variant, rotated order; sync before each run.`],
        data: { sizeMiB, rounds, runs },
      };
    } finally {
      await lab.cleanup();
    }
  },
};
