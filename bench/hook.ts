// hook: nsh as Nix's build hook on the lab Slurm against Nix's own build-remote over ssh, on one
// cluster lab (test/lab/cluster.ts: Nix 2.8 daemon, single-node Slurm 22.05 with slurmrestd, an sshd
// on 127.0.0.1 standing for the login host, the node and the ssh:// builder). bench/README.md has
// the details. (a) one trivial derivation and (b) 50 plus an aggregate, all requiring feature "nsh":
//   nsh    nix-build --store daemon --option build-hook <nsh> -j 16 …      (the lab's nsh.conf)
//   br     nix-build --store daemon --max-jobs 0 --builders '<ssh://… nsh, 16 slots>' … (default hook)
//   local  the same without the feature, built by the daemon (-j 16, --builders ''), to tell overhead
// interleaved with rotated order and fresh salts, plus Slurm alone (sbatch jobs that stamp their
// start) and nsh's phases from `nsh jobs --all --json`, its queue phase split by slurmctld's log.
// (c) 1000 tries that nsh declines (feature "benchmark": the lab's Nix has it, the cluster not): fed
// directly to nsh and to build-remote (Nix's own settings blob, captured once, then the tries, each
// after the previous reply), and as nix-build of 1000 derivations with the same four set-ups.
import fs from "node:fs";
import path from "node:path";
import { startClusterLab, type ClusterLab } from "../test/lab/cluster.ts";
import { buildersLine } from "../test/lab/sshd.ts";
import { HookChild } from "../src/nix/hook-child.ts";
import { encodeSettings, encodeTry, readSettings } from "../src/nix/hook-protocol.ts";
import { WireReader } from "../src/nix/wire.ts";
import { load1 } from "./proc.ts";
import { parseSlurmctldLog, withOverrides } from "./schedulers-calls.ts";
import { rotate } from "./schedulers-report.ts";
import { startup } from "./startup.ts";
import { probeTables, type ProbeRun } from "./hook-wide.ts";
import { startProbe, startRequestLog } from "./hook-probe-run.ts";
import { EXPR, envNumber, envString, max, median, min, onCleanup, salt, sigstopBin, table, tail, timed, type Bench, type BenchResult } from "./lib.ts";

const BUILD_REMOTE = "/usr/libexec/nix/build-remote";
const WORKLOAD = path.join(EXPR, "hook.nix");

type Variant = "nsh" | "br" | "local";
const LABEL: Record<Variant, string> = { nsh: "nsh (Slurm job)", br: "build-remote (ssh://)", local: "local build (hook declines at once)" };

type CaseId = "one" | "wide" | "wider";

/** round 0 = warm-up */
type BuildRun = { caseId: CaseId; variant: Variant; round: number; salt: string; ms: number; ok: boolean; why?: string; load1: number; stderr?: string };
/** ms: before the submits → the last job's script ran (`wide`: a wave of n, then one more); each: per job */
type SlurmRef = { caseId: CaseId; round: number; ms: number; each: number[] };

type FeedId = "nsh-empty" | "nsh-line" | "br-line" | "br-empty";
const FEED_LABEL: Record<FeedId, string> = {
  "nsh-empty": "nsh, builders ''",
  "nsh-line": "nsh, builders = the ssh:// line (each try relayed to build-remote)",
  "br-line": "build-remote, builders = the ssh:// line",
  "br-empty": "build-remote, builders '' (Nix's default when no builders)",
};

/** firstMs: spawn → first reply; perTry: send → reply of tries 2…N; totalMs: spawn → exit after EOF */
type FeedRun = { id: FeedId; round: number; firstMs: number; perTry: number[]; replies: Record<string, number>; totalMs: number; exit: number };
type NixDeclineRun = { id: FeedId; round: number; ms: number; ok: boolean; why?: string };
type JobRec = { drv: string; state: string; phases: Record<string, number>; jobId?: string; submittedAt: number };

const rangeUs = (ms: number[]) => `${(min(ms) * 1000).toFixed(0)}–${(max(ms) * 1000).toFixed(0)}`;
const quantile = (xs: readonly number[], q: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? Number.NaN;

const fmt = (x: number, digits = 0) => (Number.isFinite(x) ? x.toFixed(digits) : "–");
const B32 = "0123456789abcdfghijklmnpqrsvwxyz";
const fakeHash = () => Array.from({ length: 32 }, () => B32[Math.floor(Math.random() * 32)]).join("");

export const hook: Bench = {
  name: "hook",
  title: "nsh as build hook (Slurm jobs) vs Nix's build-remote over ssh: 1 build, 50 + aggregate, 1000 declines",
  async run(): Promise<BenchResult> {
    const rounds = envNumber("NSH_BENCH_ROUNDS", 3);
    const wideRounds = envNumber("NSH_BENCH_WIDE_ROUNDS", Math.max(2, Math.ceil((rounds * 2) / 3)));
    const wideN = envNumber("NSH_BENCH_WIDE", 50);
    const [widerN, widerJobs, widerRounds] = [envNumber("NSH_BENCH_WIDER", 200), envNumber("NSH_BENCH_WIDER_JOBS", 64), envNumber("NSH_BENCH_WIDER_ROUNDS", 1)];
    const widthOf = (c: CaseId) => (c === "one" ? 1 : c === "wide" ? wideN : widerN);
    const jobsOf = (c: CaseId) => (c === "wider" ? widerJobs : 16);
    const roundsOf = (c: CaseId) => (c === "one" ? rounds : c === "wide" ? wideRounds : widerRounds);
    const tries = envNumber("NSH_BENCH_TRIES", 1000);
    const declineRounds = envNumber("NSH_BENCH_DECLINE_ROUNDS", 3);
    const timeoutMs = envNumber("NSH_BENCH_TIMEOUT", 600) * 1000;
    const cases = envString("NSH_BENCH_CASES", "startup,one,wide,wider,decline").split(",").map((s) => s.trim());
    for (const c of cases) if (!["startup", "one", "wide", "wider", "decline"].includes(c)) throw new Error(`NSH_BENCH_CASES: expected startup, one, wide, wider and/or decline, got '${c}'`);
    const nsh = path.join(path.dirname(sigstopBin()), "nsh");

    // Start-up CPU first, on a machine without the lab's daemons: bench/startup.ts, with its own settings.
    const started = cases.includes("startup") ? await startup.run() : undefined;
    const lab: ClusterLab = await startClusterLab("bench-hook");
    try {
      const env = lab.nix.env;
      // The builder must offer the feature it is listed with: its chroot store gets system-features
      // (a store setting, as nsh's agent gives the node's Nix extra-system-features).
      const lineFor = (maxJobs: number) => buildersLine(lab.sshd, { features: ["nsh"], maxJobs, remoteStore: `${lab.sshd.remoteStore}&system-features=nsh` });
      const line = lineFor(16);
      const notes: string[] = [];
      const salts = new Map<CaseId, string[]>([["one", []], ["wide", []], ["wider", []]]);

      // ---------- (a) and (b) ----------
      const buildArgv = (v: Variant, c: CaseId, s: string): string[] => {
        const [n, j] = [widthOf(c), String(jobsOf(c))];
        const base = ["nix-build", "--store", "daemon", "--no-out-link", WORKLOAD, "-A", c === "one" ? "one" : "all", "--argstr", "salt", s, "--arg", "n", String(n)];
        if (v === "nsh") return [...base, "--option", "build-hook", nsh, "-j", j];
        if (v === "br") return [...base, "--max-jobs", "0", "--builders", lineFor(jobsOf(c))];
        return [...base, "--argstr", "feature", "", "--builders", "", "-j", j];
      };
      const expected = (c: CaseId, s: string) => (c === "one" ? `one ${s}` : String((widthOf(c) * (widthOf(c) - 1)) / 2));

      const runBuild = async (c: CaseId, v: Variant, round: number, of: number): Promise<BuildRun> => {
        const s = salt();
        const load = load1();
        const r = await timed(buildArgv(v, c, s), env, { timeoutMs });
        let why: string | undefined = r.timedOut ? `timed out after ${timeoutMs / 1000} s` : r.code !== 0 ? `exit ${r.code ?? r.signal}` : undefined;
        const out = r.stdout.trim().split("\n").at(-1) ?? "";
        const got = why || !fs.existsSync(out) ? "" : fs.readFileSync(out, "utf8").trim();
        if (!why && got !== expected(c, s)) why = `exit 0, but ${out || "no output path"} holds '${got}', not '${expected(c, s)}'`;
        if (v === "nsh" && round > 0) salts.get(c)!.push(s);
        const run: BuildRun = { caseId: c, variant: v, round, salt: s, ms: r.ms, ok: !why, why, load1: load, stderr: why ? tail(r.stderr, 3000) : undefined };
        process.stderr.write(`  ${c}, ${round === 0 ? "warm-up" : `round ${round}/${of}`}: ${LABEL[v]} ${run.ok ? `${r.ms.toFixed(0)} ms` : `FAILED (${why})`}\n`);
        if (!run.ok) process.stderr.write(`${tail(r.stderr, 1500)}\n`);
        return run;
      };

      // Slurm's own delay: submit → the job's script runs. Jobs are submitted concurrently, as nsh's hooks do.
      const stampDir = fs.mkdtempSync(path.join(lab.slurm.jobsDir, "bench-ref-"));
      let stampSerial = 0;
      const slurmWave = async (count: number): Promise<{ ms: number; each: number[] }> => {
        const files = Array.from({ length: count }, () => path.join(stampDir, String(stampSerial++)));
        const t0 = Date.now();
        const submits = await Promise.all(files.map((f) => lab.slurm.run(["sbatch", "--parsable", "-o", "/dev/null", "--wrap", `date +%s%N > ${f}.tmp && mv ${f}.tmp ${f}`], { timeoutMs: 60_000 })));
        const bad = submits.find((r) => r.code !== 0);
        if (bad) throw new Error(`sbatch failed: ${bad.stderr.trim()}`);
        const deadline = Date.now() + 120_000;
        while (!files.every((f) => fs.existsSync(f))) {
          if (Date.now() > deadline) throw new Error(`Slurm reference: ${files.filter((f) => !fs.existsSync(f)).length} of ${count} jobs did not start within 120 s`);
          await Bun.sleep(5);
        }
        const each = files.map((f) => Number(BigInt(fs.readFileSync(f, "utf8").trim()) / 1000n) / 1000 - t0);
        return { ms: max(each), each };
      };
      const slurmRef = async (c: CaseId, round: number): Promise<SlurmRef> => {
        const a = await slurmWave(widthOf(c));
        const b = c === "one" ? { ms: 0, each: [] } : await slurmWave(1);
        return { caseId: c, round, ms: a.ms + b.ms, each: [...a.each, ...b.each] };
      };

      const builds: BuildRun[] = [];
      const refs: SlurmRef[] = [];
      const variants = envString("NSH_BENCH_VARIANTS", "nsh,br,local").split(",") as Variant[];
      for (const v of variants) if (!(v in LABEL)) throw new Error(`NSH_BENCH_VARIANTS: expected nsh, br and/or local, got '${v}'`);
      // Wide cases: nsh reaches slurmrestd through a counting proxy; their nsh and build-remote runs are probed.
      const requests = startRequestLog(lab.slurm.restUrl);
      onCleanup(() => requests.stop());
      const probes: ProbeRun[] = [];
      const roots = [lab.nix.daemonPid ?? 0, lab.sshd.pid, ...Object.values(lab.slurm.pids)];
      const probed = async (c: CaseId, v: Variant, round: number, of: number): Promise<BuildRun> => {
        if (c === "one" || v === "local" || round === 0) return runBuild(c, v, round, of);
        const probe = startProbe({ nshExe: nsh, roots, sshPort: lab.sshd.port, requests: requests.log, stepdMarker: lab.slurm.confFile });
        const run = await runBuild(c, v, round, of);
        probes.push({ caseId: c, variant: v, round, ok: run.ok, builds: widthOf(c) + 1, summary: probe.stop() });
        return run;
      };
      for (const c of ["one", "wide", "wider"] as CaseId[]) {
        if (!cases.includes(c)) continue;
        const of = roundsOf(c);
        if (c !== "one") fs.writeFileSync(lab.nshConf, withOverrides(fs.readFileSync(lab.nshConf, "utf8"), `slurm-api-port = ${requests.port}`));
        // Warm-up, not counted: nsh places its agent binary on the cluster once, ssh and page cache.
        // The 200-wide case has none when an earlier case warmed up.
        if (c !== "wider" || !builds.length) for (const v of variants) builds.push(await runBuild(c, v, 0, of));
        if (c !== "wider" || !refs.length) await slurmRef(c, 0);
        for (let round = 1; round <= of; round++) {
          for (const v of rotate(variants, round - 1)) builds.push(await probed(c, v, round, of));
          const ref = await slurmRef(c, round);
          refs.push(ref);
          process.stderr.write(`  ${c}, round ${round}/${of}: Slurm reference ${ref.ms.toFixed(0)} ms\n`);
        }
      }

      // nsh's phases of the counted runs, as `nsh jobs --all --json` reports them.
      const jobsOut = Bun.spawnSync([nsh, "jobs", "--all", "--json"], { env: { ...env, NSH_CONF: lab.nshConf } });
      const records = jobsOut.stdout.toString().trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as JobRec);
      const recordOf = (s: string) => records.filter((j) => j.drv.includes(`-${s}.drv`));
      // slurmctld's log (ms timestamps, local time) splits each nsh job's queue phase: nsh's own work
      // before the submit RPC, Slurm's submit → allocation, and allocation → nsh sees it running.
      const { submitAt, allocAt } = parseSlurmctldLog(fs.readFileSync(lab.slurm.logs.slurmctld, "utf8"));

      // ---------- (c) ----------
      const feeds: FeedRun[] = [];
      const nixDeclines: NixDeclineRun[] = [];
      let captured: { verbosity: number; settings: number; bytes: number } | undefined;
      const triesSent: Partial<Record<FeedId, number>> = {};
      if (cases.includes("decline")) {
        // Nix's own settings blob: a hook that records what the daemon sends, then declines permanently.
        const capDir = path.join(lab.nix.root, "capture");
        fs.mkdirSync(capDir, { recursive: true });
        const capHook = path.join(capDir, "hook.sh");
        fs.writeFileSync(capHook, `#!/bin/sh\nprintf '%s\\n' "$@" > ${capDir}/argv\ntimeout 2 cat > ${capDir}/stdin\necho '# decline-permanently' >&2\n`, { mode: 0o755 });
        const cap = await lab.nix.run(["nix-build", "--store", "daemon", "--no-out-link", WORKLOAD, "-A", "one", "--argstr", "salt", salt(), "--argstr", "feature", "", "--builders", "", "--option", "build-hook", capHook], { timeoutMs: 60_000 });
        if (cap.code !== 0) throw new Error(`capturing the settings blob failed: ${tail(cap.stderr)}`);
        const raw = new Uint8Array(fs.readFileSync(path.join(capDir, "stdin")));
        let given = false;
        const reader = new WireReader({ read: async () => (given ? { done: true } : ((given = true), { done: false, value: raw })) });
        const settings = await readSettings(reader);
        const verbosity = Number(fs.readFileSync(path.join(capDir, "argv"), "utf8").trim().split("\n").at(-1));
        captured = { verbosity, settings: settings.size, bytes: reader.consumed };
        const blobFor = (hookPath: string, builders: string) => encodeSettings(new Map([...settings, ["builders", builders], ["build-hook", hookPath]]));
        const hookEnv = { ...env, NSH_CONF: lab.nshConf, NIX_SSHOPTS: `-F ${lab.sshConfig}`, NIX_REMOTE: "local" };
        const system = `${process.arch === "arm64" ? "aarch64" : "x86_64"}-linux`;

        const feed = async (id: FeedId, round: number): Promise<FeedRun> => {
          const [hookPath, builders] = id === "nsh-empty" ? [nsh, ""] : id === "nsh-line" ? [nsh, line] : id === "br-line" ? [BUILD_REMOTE, line] : [BUILD_REMOTE, ""];
          const requests = Array.from({ length: tries }, (_, i) => encodeTry({ amWilling: true, system, drvPath: `${lab.nix.storeDir}/${fakeHash()}-decline${i}.drv`, requiredFeatures: ["benchmark"] }));
          const blob = blobFor(hookPath, builders);
          const t0 = performance.now();
          const child = new HookChild({ hook: [hookPath], verbosity, logFds: false, env: hookEnv });
          const stop = onCleanup(() => child.kill("SIGKILL"));
          await child.send(blob);
          const perTry: number[] = [];
          const replies: Record<string, number> = {};
          let firstMs = Number.NaN;
          for (let i = 0; i < tries; i++) {
            const t = performance.now();
            await child.send(requests[i]!);
            const r = await child.reply(() => {});
            if (r.kind === "eof") break;
            const now = performance.now();
            if (i === 0) firstMs = now - t0;
            else perTry.push(now - t);
            replies[r.word] = (replies[r.word] ?? 0) + 1;
            if (r.word === "accept") throw new Error(`${FEED_LABEL[id]} accepted a build it should decline`);
            if (r.word === "decline-permanently") break; // Nix asks this hook nothing more
          }
          const exit = await child.close(5000);
          const totalMs = performance.now() - t0;
          stop();
          process.stderr.write(`  decline (fed), round ${round}/${declineRounds}: ${FEED_LABEL[id]}: first answer ${firstMs.toFixed(1)} ms, per try ${median(perTry).toFixed(3)} ms, ${JSON.stringify(replies)}\n`);
          return { id, round, firstMs, perTry, replies, totalMs, exit };
        };
        const nixDecline = async (id: FeedId, round: number): Promise<NixDeclineRun> => {
          const base = ["nix-build", "--store", "daemon", "--no-out-link", WORKLOAD, "-A", "leaves", "--argstr", "salt", salt(), "--arg", "n", String(tries), "--argstr", "feature", "benchmark", "-j", "16"];
          const argv = [...base, "--builders", id.endsWith("line") ? line : "", ...(id.startsWith("nsh") ? ["--option", "build-hook", nsh] : [])];
          const r = await timed(argv, env, { timeoutMs });
          const outs = r.stdout.trim().split("\n").filter(Boolean).length;
          const why = r.timedOut ? "timed out" : r.code !== 0 ? `exit ${r.code ?? r.signal}: ${tail(r.stderr, 600)}` : outs !== tries ? `${outs} outputs, not ${tries}` : undefined;
          process.stderr.write(`  decline (nix-build), ${round === 0 ? "warm-up" : `round ${round}/${declineRounds}`}: ${FEED_LABEL[id]}: ${why ? `FAILED (${why})` : `${r.ms.toFixed(0)} ms`}\n`);
          return { id, round, ms: r.ms, ok: !why, why };
        };
        // How many tries Nix sends for those builds: one extra run per set-up (not timed) with a
        // wrapper hook that tees Nix's stream into a file, then counting the `try` records in it.
        const countTries = async (id: FeedId): Promise<number> => {
          const target = id.startsWith("nsh") ? nsh : BUILD_REMOTE;
          const file = path.join(capDir, `${id}.in`);
          const wrapper = path.join(capDir, `${id}.sh`);
          fs.writeFileSync(wrapper, `#!/bin/sh\ntee -a ${file} | ${target} "$@"\n`, { mode: 0o755 });
          const argv = ["nix-build", "--store", "daemon", "--no-out-link", WORKLOAD, "-A", "leaves", "--argstr", "salt", salt(), "--arg", "n", String(tries), "--argstr", "feature", "benchmark", "-j", "16", "--builders", id.endsWith("line") ? line : "", "--option", "build-hook", wrapper];
          const r = await timed(argv, env, { timeoutMs });
          if (r.code !== 0) throw new Error(`counting the tries (${FEED_LABEL[id]}) failed: ${tail(r.stderr, 600)}`);
          const bytes = fs.readFileSync(file);
          const word = Buffer.from([3, 0, 0, 0, 0, 0, 0, 0, 0x74, 0x72, 0x79, 0, 0, 0, 0, 0]); // string "try"
          let n = 0;
          for (let i = bytes.indexOf(word); i >= 0; i = bytes.indexOf(word, i + word.length)) n++;
          process.stderr.write(`  decline (nix-build through a tee, not timed): ${FEED_LABEL[id]}: Nix sent ${n} tries for ${tries} derivations\n`);
          return n;
        };
        for (const id of ["nsh-empty", "br-line", "br-empty"] as FeedId[]) triesSent[id] = await countTries(id);

        const ids: FeedId[] = ["nsh-empty", "br-line", "nsh-line", "br-empty"];
        for (const id of ids) await feed(id, 0); // warm-up
        for (let round = 1; round <= declineRounds; round++) for (const id of rotate(ids, round - 1)) feeds.push(await feed(id, round));
        for (const id of ids) nixDeclines.push(await nixDecline(id, 0));
        for (let round = 1; round <= declineRounds; round++) for (const id of rotate(ids, round - 1)) nixDeclines.push(await nixDecline(id, round));
      }

      // ---------- tables ----------
      const tables: string[] = started?.tables.map((t) => `start-up (bench/startup.ts):\n\n${t}`) ?? [];
      const counted = (c: CaseId, v: Variant) => builds.filter((r) => r.caseId === c && r.variant === v && r.round > 0);
      const good = (c: CaseId, v: Variant) => counted(c, v).filter((r) => r.ok);
      const med = (c: CaseId, v: Variant) => median(good(c, v).map((r) => r.ms));
      const caseLabel = (c: CaseId) => (c === "one" ? "(a) 1 derivation" : `(b${c === "wide" ? "" : "2"}) ${widthOf(c)} + aggregate, -j ${jobsOf(c)}`);
      const buildCases = (["one", "wide", "wider"] as CaseId[]).filter((c) => cases.includes(c));
      const summary: Record<string, unknown>[] = [];
      const queueSplit: Record<string, Array<{ before: number; slurm: number; seen: number }>> = {};
      const goalLines: string[] = [];
      if (buildCases.length) {
        const rows: Array<Array<string | number>> = [];
        for (const c of buildCases)
          for (const v of variants) {
            const ms = good(c, v).map((r) => r.ms);
            rows.push([caseLabel(c), LABEL[v], `${ms.length} / ${counted(c, v).length}`, fmt(min(ms)), fmt(median(ms)), fmt(max(ms))]);
          }
        for (const c of buildCases) {
          const ms = refs.filter((r) => r.caseId === c).map((r) => r.ms);
          rows.push([caseLabel(c), c === "one" ? "Slurm alone: sbatch → the job's script runs" : `Slurm alone: ${widthOf(c)} sbatch at once → all running, then 1 more`, `${ms.length}`, fmt(min(ms)), fmt(median(ms)), fmt(max(ms))]);
        }
        tables.push(table(["case", "variant", "ok runs", "min ms", "median ms", "max ms"], rows));

        const gRows: Array<Array<string | number>> = [];
        for (const c of buildCases) {
          const nshMs = med(c, "nsh");
          const brMs = med(c, "br");
          const localMs = med(c, "local");
          const slurmMs = median(refs.filter((r) => r.caseId === c).map((r) => r.ms));
          const nBuilds = c === "one" ? 1 : widthOf(c) + 1;
          const brOver = (brMs - localMs) / nBuilds;
          const nshOver = (nshMs - localMs - slurmMs) / nBuilds;
          const pairs: number[] = [];
          for (let round = 1; round <= roundsOf(c); round++) {
            const a = counted(c, "nsh").find((r) => r.round === round && r.ok);
            const b = counted(c, "br").find((r) => r.round === round && r.ok);
            if (a && b) pairs.push(a.ms / b.ms);
          }
          // For one build: the Slurm delay of nsh's own job in that run (slurmctld: submit RPC → allocation).
          const own = good(c, "nsh").flatMap((r) => {
            const id = recordOf(r.salt)[0]?.jobId ?? "";
            const [sub, alloc] = [submitAt.get(id), allocAt.get(id)];
            return sub !== undefined && alloc !== undefined ? [r.ms - localMs - (alloc - sub)] : [];
          });
          const nshOverOwn = c === "one" && own.length ? median(own) : Number.NaN;
          // Slurm's scheduler runs on a ~1 s tick, so a separately submitted reference job waits
          // 0–1 s at random: for one build, the delay of nsh's own job is Slurm's delay for it.
          const judged = c === "one" && !Number.isNaN(nshOverOwn) ? nshOverOwn : nshOver;
          const met = judged <= brOver;
          gRows.push([caseLabel(c), (nshMs / brMs).toFixed(3), pairs.length ? `${min(pairs).toFixed(2)} – ${max(pairs).toFixed(2)}` : "–", fmt(brOver), fmt((nshMs - localMs) / nBuilds), fmt(slurmMs / nBuilds), fmt(nshOver), fmt(nshOverOwn), met ? "met" : "not met"]);
          const basis = judged === nshOver ? "beyond Slurm alone" : `beyond its own job's Slurm delay (${fmt(nshOver)} ms beyond the separate Slurm reference)`;
          goalLines.push(`${caseLabel(c)}: nsh's overhead ${basis} ${fmt(judged)} ms per build vs build-remote's ${fmt(brOver)} ms: ${met ? "met" : "NOT met"}`);
          summary.push({ case: c, nshMedianMs: nshMs, brMedianMs: brMs, localMedianMs: localMs, slurmMedianMs: slurmMs, builds: nBuilds, brOverheadPerBuildMs: brOver, nshOverheadBeyondSlurmPerBuildMs: nshOver, nshOverheadBeyondOwnJobDelayMs: nshOverOwn, goalMet: met });
        }
        tables.push(table(["case", "nsh / build-remote (ratio of medians)", "per-round range", "build-remote overhead per build ms (br − local) / builds", "nsh overhead per build ms (nsh − local) / builds", "Slurm alone per build ms", "nsh overhead beyond Slurm per build ms", "the same, beyond its own job's Slurm delay (slurmctld log; one build only)", "goal: nsh beyond Slurm ≤ build-remote"], gRows));

        const pRows: Array<Array<string | number>> = [];
        const qRows: Array<Array<string | number>> = [];
        for (const c of buildCases) {
          const recs = salts.get(c)!.flatMap(recordOf);
          const ph = (p: string) => recs.map((j) => j.phases[p]).filter((x): x is number => typeof x === "number").map((x) => x * 1000);
          const sums = recs.map((j) => ["queue", "upload", "build", "download"].reduce((s, p) => s + (j.phases[p] ?? 0) * 1000, 0));
          const states = recs.reduce<Record<string, number>>((m, j) => ((m[j.state] = (m[j.state] ?? 0) + 1), m), {});
          pRows.push([caseLabel(c), `${recs.length} (${Object.entries(states).map(([k, n]) => `${n} ${k}`).join(", ")})`, fmt(median(ph("queue"))), fmt(median(ph("upload"))), fmt(median(ph("build"))), fmt(median(ph("download"))), fmt(median(sums)), fmt(max(ph("queue")))]);
          const split = recs.flatMap((j) => {
            const [sub, alloc] = [submitAt.get(j.jobId ?? ""), allocAt.get(j.jobId ?? "")];
            if (sub === undefined || alloc === undefined || typeof j.phases.queue !== "number") return [];
            return [{ before: sub - j.submittedAt, slurm: alloc - sub, seen: j.submittedAt + j.phases.queue * 1000 - alloc }];
          });
          if (split.length) qRows.push([caseLabel(c), split.length, fmt(median(split.map((x) => x.before))), fmt(median(split.map((x) => x.slurm))), fmt(max(split.map((x) => x.slurm))), fmt(median(split.map((x) => x.seen))), fmt(max(split.map((x) => x.seen)))]);
          queueSplit[c] = split;
        }
        tables.push(table(["case (nsh jobs of the counted runs)", "jobs", "queue ms (median)", "upload ms", "build ms", "download ms", "sum ms (median)", "queue ms (max)"], pRows));
        if (qRows.length) tables.push(table(["nsh's queue phase, split by slurmctld's log", "jobs", "nsh before the submit RPC ms (median)", "Slurm: submit → allocation ms (median)", "(max)", "allocation → nsh sees it running ms (median)", "(max)"], qRows));
        tables.push(...probeTables(probes, caseLabel as (c: never) => string, LABEL));
      }
      if (cases.includes("decline")) {
        const fRows: Array<Array<string | number>> = [];
        const ids: FeedId[] = ["nsh-empty", "nsh-line", "br-line", "br-empty"];
        for (const id of ids) {
          const rs = feeds.filter((f) => f.id === id);
          const per = rs.flatMap((f) => f.perTry);
          const answered = rs.map((f) => Object.values(f.replies).reduce((s, n) => s + n, 0));
          const words = [...new Set(rs.flatMap((f) => Object.keys(f.replies)))].join(", ");
          const perDecision = id === "br-empty" ? median(rs.map((f) => f.totalMs)) : median(rs.map((f) => f.totalMs)) / tries;
          fRows.push([FEED_LABEL[id], rs.length, `${median(answered)} (${words})`, fmt(median(rs.map((f) => f.firstMs)), 1), per.length ? `${(median(per) * 1000).toFixed(0)} (${rangeUs(rs.map((f) => median(f.perTry)))})` : "–", per.length ? (quantile(per, 0.9) * 1000).toFixed(0) : "–", fmt(median(rs.map((f) => f.totalMs))), id === "br-empty" ? `${fmt(perDecision, 1)} ms for all (one answer, then Nix asks no more)` : (perDecision * 1000).toFixed(0)]);
        }
        tables.push(table(["hook fed directly (settings blob + " + tries + " tries)", "runs", "answers per run", "first answer ms (start included)", "per decision µs: median of tries 2…N (per-run medians)", "p90 µs", "start → exit ms (median)", "per decision µs, start included (total / tries)"], fRows));

        const nRows: Array<Array<string | number>> = [];
        const base = median(nixDeclines.filter((r) => r.id === "br-empty" && r.round > 0 && r.ok).map((r) => r.ms));
        for (const id of ids) {
          const rs = nixDeclines.filter((r) => r.id === id && r.round > 0);
          const ms = rs.filter((r) => r.ok).map((r) => r.ms);
          const sent = triesSent[id] ?? triesSent[id === "nsh-line" ? "nsh-empty" : id];
          nRows.push([FEED_LABEL[id], `${ms.length} / ${rs.length}`, fmt(min(ms)), fmt(median(ms)), fmt(max(ms)), id === "br-empty" ? "(reference)" : ((median(ms) - base) / tries).toFixed(2), sent === undefined ? "–" : `${sent}${triesSent[id] === undefined ? " (as nsh, builders '')" : ""}`, id === "br-empty" || !sent ? "–" : fmt(((median(ms) - base) / sent) * 1000)]);
        }
        tables.push(table([`nix-build of ${tries} derivations the hook declines (-j 16, built locally)`, "ok runs", "min ms", "median ms", "max ms", "ms per derivation more than build-remote with builders ''", "tries Nix sent (one extra run through a tee)", "µs per try more than build-remote with builders ''"], nRows));
        for (const r of nixDeclines.filter((r) => !r.ok && r.round > 0)) notes.push(`FAILED (decline, nix-build, round ${r.round}, ${FEED_LABEL[r.id]}): ${r.why}`);
      }

      notes.unshift(
        ...(started?.notes.map((n) => `start-up: ${n}`) ?? []),
        `Goal: nsh's overhead per build beyond Slurm's own scheduling delay ≤ build-remote's whole per-build overhead. Overhead = median wall time minus the median local build of the same derivations (the hook declines once, Nix builds them itself); for nsh also minus Slurm alone (sbatch → the job's script runs); divided by the number of builds. ${goalLines.join("; ") || "(no build cases run)"}.`,
        `Rounds: (a) ${rounds}, (b) ${wideRounds}, (b2) ${widerRounds}, decline ${declineRounds}; one warm-up round each, not counted; order rotated every round. nsh ran as ${nsh} (the snapshot of dist/nsh). builders line: '${line}'. In (b) and (b2) nsh reached slurmrestd through a counting proxy (bench/schedulers.ts's), and /proc was sampled every 100 ms during the counted nsh and build-remote runs.`,
      );
      if (captured) notes.push(`Settings blob captured from the lab daemon: ${captured.settings} settings, ${captured.bytes} bytes, verbosity ${captured.verbosity}.`);
      const loads = builds.filter((r) => r.round > 0).map((r) => r.load1).filter(Number.isFinite);
      if (loads.length) notes.push(`1-minute load average before the counted build runs: ${min(loads).toFixed(2)} – ${max(loads).toFixed(2)} (median ${median(loads).toFixed(2)}) on ${navigator.hardwareConcurrency} cores.`);
      for (const r of builds.filter((r) => r.round > 0 && !r.ok)) notes.push(`FAILED (${r.caseId}, round ${r.round}, ${LABEL[r.variant]}): ${r.why}`);

      return {
        tables,
        notes,
        data: {
          settings: { rounds, wideRounds, wideN, widerN, widerJobs, widerRounds, tries, declineRounds, timeoutMs, cases, line },
          summary,
          builds,
          slurm: refs,
          queueSplit,
          nshJobs: [...salts.values()].flat().flatMap(recordOf),
          captured,
          triesSent,
          feeds: feeds.map((f) => ({ ...f, perTry: undefined, perTryMedianMs: median(f.perTry), perTryP90Ms: quantile(f.perTry, 0.9), perTryMaxMs: max(f.perTry) })),
          nixDeclines,
          probes,
          startup: started?.data,
        },
      };
    } finally {
      await lab.cleanup();
    }
  },
};
