// (c) of the hook benchmark (bench/hook.ts): 1000 tries that nsh declines (feature "benchmark": the
// lab's Nix has it, the cluster not), fed directly to nsh and to build-remote (Nix's own settings
// blob, captured once, then the tries, each after the previous reply), and as nix-build of 1000
// derivations with the same four set-ups. Runs them and makes their two tables.
import fs from "node:fs";
import path from "node:path";
import type { ClusterLab } from "../test/lab/cluster.ts";
import { HookChild } from "../src/nix/hook-child.ts";
import { encodeSettings, encodeTry, readSettings } from "../src/nix/hook-protocol.ts";
import { WireReader } from "../src/nix/wire.ts";
import { rotate } from "./schedulers-report.ts";
import { EXPR, max, median, min, onCleanup, salt, table, tail, timed } from "./lib.ts";

const BUILD_REMOTE = "/usr/libexec/nix/build-remote";
const WORKLOAD = path.join(EXPR, "hook.nix");

type FeedId = "nsh-empty" | "nsh-line" | "br-line" | "br-empty";
const FEED_LABEL: Record<FeedId, string> = {
  "nsh-empty": "nsh, builders ''",
  "nsh-line": "nsh, builders = the ssh:// line (each try relayed to build-remote)",
  "br-line": "build-remote, builders = the ssh:// line",
  "br-empty": "build-remote, builders '' (Nix's default when no builders)",
};

/** firstMs: spawn → first reply; perTry: send → reply of tries 2…N; totalMs: spawn → exit after EOF */
type FeedRun = {
  id: FeedId; round: number; firstMs: number; perTry: number[]; replies: Record<string, number>; totalMs: number; exit: number;
};
type NixDeclineRun = { id: FeedId; round: number; ms: number; ok: boolean; why?: string };

const rangeUs = (ms: number[]) => `${(min(ms) * 1000).toFixed(0)}–${(max(ms) * 1000).toFixed(0)}`;
const quantile = (xs: readonly number[], q: number): number =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? Number.NaN;
const fmt = (x: number, digits = 0) => (Number.isFinite(x) ? x.toFixed(digits) : "–");
const B32 = "0123456789abcdfghijklmnpqrsvwxyz";
const fakeHash = () => Array.from({ length: 32 }, () => B32[Math.floor(Math.random() * 32)]).join("");

export interface DeclineOptions {
  lab: ClusterLab;
  nsh: string;
  /** the ssh:// builders line of 16 slots */
  line: string;
  tries: number;
  declineRounds: number;
  timeoutMs: number;
}

export async function runDeclines(
  o: DeclineOptions,
): Promise<{ tables: string[]; notes: string[]; data: Record<string, unknown> }> {
  const { lab, nsh, line, tries, declineRounds, timeoutMs } = o;
  const env = lab.nix.env;
  const feeds: FeedRun[] = [];
  const nixDeclines: NixDeclineRun[] = [];
  const triesSent: Partial<Record<FeedId, number>> = {};
  const notes: string[] = [];
  const leavesArgv = () => ["nix-build", "--store", "daemon", "--no-out-link", WORKLOAD, "-A", "leaves", "--argstr", "salt", salt(),
    "--arg", "n", String(tries), "--argstr", "feature", "benchmark", "-j", "16"];
  // Nix's own settings blob: a hook that records what the daemon sends, then declines permanently.
  const capDir = path.join(lab.nix.root, "capture");
  fs.mkdirSync(capDir, { recursive: true });
  const capHook = path.join(capDir, "hook.sh");
  const capScript = `#!/bin/sh\nprintf '%s\\n' "$@" > ${capDir}/argv\ntimeout 2 cat > ${capDir}/stdin\n` +
    "echo '# decline-permanently' >&2\n";
  fs.writeFileSync(capHook, capScript, { mode: 0o755 });
  const capArgv = ["nix-build", "--store", "daemon", "--no-out-link", WORKLOAD, "-A", "one", "--argstr", "salt", salt(),
    "--argstr", "feature", "", "--builders", "", "--option", "build-hook", capHook];
  const cap = await lab.nix.run(capArgv, { timeoutMs: 60_000 });
  if (cap.code !== 0) throw new Error(`capturing the settings blob failed: ${tail(cap.stderr)}`);
  const raw = new Uint8Array(fs.readFileSync(path.join(capDir, "stdin")));
  let given = false;
  const reader = new WireReader({ read: async () => (given ? { done: true } : ((given = true), { done: false, value: raw })) });
  const settings = await readSettings(reader);
  const verbosity = Number(fs.readFileSync(path.join(capDir, "argv"), "utf8").trim().split("\n").at(-1));
  const captured = { verbosity, settings: settings.size, bytes: reader.consumed };
  const blobFor = (hookPath: string, builders: string) =>
    encodeSettings(new Map([...settings, ["builders", builders], ["build-hook", hookPath]]));
  const hookEnv = { ...env, NSH_CONF: lab.nshConf, NIX_SSHOPTS: `-F ${lab.sshConfig}`, NIX_REMOTE: "local" };
  const system = `${process.arch === "arm64" ? "aarch64" : "x86_64"}-linux`;

  const feed = async (id: FeedId, round: number): Promise<FeedRun> => {
    const hookPath = id.startsWith("nsh") ? nsh : BUILD_REMOTE;
    const builders = id.endsWith("line") ? line : "";
    const requests = Array.from({ length: tries }, (_, i) => encodeTry({
      amWilling: true, system, drvPath: `${lab.nix.storeDir}/${fakeHash()}-decline${i}.drv`, requiredFeatures: ["benchmark"],
    }));
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
    const argv = [...leavesArgv(), "--builders", id.endsWith("line") ? line : "",
      ...(id.startsWith("nsh") ? ["--option", "build-hook", nsh] : [])];
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
    const argv = [...leavesArgv(), "--builders", id.endsWith("line") ? line : "", "--option", "build-hook", wrapper];
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

  const order: FeedId[] = ["nsh-empty", "br-line", "nsh-line", "br-empty"];
  for (const id of order) await feed(id, 0); // warm-up
  for (let round = 1; round <= declineRounds; round++) for (const id of rotate(order, round - 1)) feeds.push(await feed(id, round));
  for (const id of order) nixDeclines.push(await nixDecline(id, 0));
  for (let round = 1; round <= declineRounds; round++) for (const id of rotate(order, round - 1)) nixDeclines.push(await nixDecline(id, round));

  // ---------- tables ----------
  const tables: string[] = [];
  const fRows: Array<Array<string | number>> = [];
  const ids: FeedId[] = ["nsh-empty", "nsh-line", "br-line", "br-empty"];
  for (const id of ids) {
    const rs = feeds.filter((f) => f.id === id);
    const per = rs.flatMap((f) => f.perTry);
    const answered = rs.map((f) => Object.values(f.replies).reduce((s, n) => s + n, 0));
    const words = [...new Set(rs.flatMap((f) => Object.keys(f.replies)))].join(", ");
    const perDecision = id === "br-empty" ? median(rs.map((f) => f.totalMs)) : median(rs.map((f) => f.totalMs)) / tries;
    fRows.push([
      FEED_LABEL[id], rs.length, `${median(answered)} (${words})`, fmt(median(rs.map((f) => f.firstMs)), 1),
      per.length ? `${(median(per) * 1000).toFixed(0)} (${rangeUs(rs.map((f) => median(f.perTry)))})` : "–",
      per.length ? (quantile(per, 0.9) * 1000).toFixed(0) : "–", fmt(median(rs.map((f) => f.totalMs))),
      id === "br-empty" ? `${fmt(perDecision, 1)} ms for all (one answer, then Nix asks no more)` : (perDecision * 1000).toFixed(0),
    ]);
  }
  tables.push(table([
    `hook fed directly (settings blob + ${tries} tries)`, "runs", "answers per run", "first answer ms (start included)",
    "per decision µs: median of tries 2…N (per-run medians)", "p90 µs", "start → exit ms (median)",
    "per decision µs, start included (total / tries)",
  ], fRows));

  const nRows: Array<Array<string | number>> = [];
  const base = median(nixDeclines.filter((r) => r.id === "br-empty" && r.round > 0 && r.ok).map((r) => r.ms));
  for (const id of ids) {
    const rs = nixDeclines.filter((r) => r.id === id && r.round > 0);
    const ms = rs.filter((r) => r.ok).map((r) => r.ms);
    const sent = triesSent[id] ?? triesSent[id === "nsh-line" ? "nsh-empty" : id];
    nRows.push([
      FEED_LABEL[id], `${ms.length} / ${rs.length}`, fmt(min(ms)), fmt(median(ms)), fmt(max(ms)),
      id === "br-empty" ? "(reference)" : ((median(ms) - base) / tries).toFixed(2),
      sent === undefined ? "–" : `${sent}${triesSent[id] === undefined ? " (as nsh, builders '')" : ""}`,
      id === "br-empty" || !sent ? "–" : fmt(((median(ms) - base) / sent) * 1000),
    ]);
  }
  tables.push(table([
    `nix-build of ${tries} derivations the hook declines (-j 16, built locally)`, "ok runs", "min ms", "median ms", "max ms",
    "ms per derivation more than build-remote with builders ''", "tries Nix sent (one extra run through a tee)",
    "µs per try more than build-remote with builders ''",
  ], nRows));
  for (const r of nixDeclines.filter((r) => !r.ok && r.round > 0)) notes.push(`FAILED (decline, nix-build, round ${r.round}, ${FEED_LABEL[r.id]}): ${r.why}`);

  notes.push(`Settings blob captured from the lab daemon: ${captured.settings} settings, ${captured.bytes} bytes, verbosity ${captured.verbosity}.`);
  const data = {
    captured,
    triesSent,
    feeds: feeds.map((f) => ({
      ...f, perTry: undefined, perTryMedianMs: median(f.perTry), perTryP90Ms: quantile(f.perTry, 0.9), perTryMaxMs: max(f.perTry),
    })),
    nixDeclines,
  };
  return { tables, notes, data };
}
