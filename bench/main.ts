// npm run bench [name...]: runs the named benchmarks (default: all), prints a markdown table for each,
// and writes what it measured to bench/results/<time>-<name>.json. It builds nothing: it measures
// dist/nix-sigstop as built by `npm run build`, next to plain nix on the same lab daemon.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { RESULTS, SIGSTOP, machine, runCleanups, snapshotSigstop, type Bench } from "./lib.ts";
import { overhead } from "./sigstop-overhead.ts";
import { memory } from "./sigstop-memory.ts";
import { copy } from "./copy.ts";
import { hook } from "./hook.ts";
import { hookBig } from "./hook-big.ts";
import { startup } from "./startup.ts";
import { schedulers } from "./schedulers.ts";

const BENCHES: Bench[] = [startup, overhead, memory, copy, hook, hookBig, schedulers];

function usage(): string {
  return [
    "usage: npm run bench [name...]   (default: all)",
    "",
    ...BENCHES.map((b) => `  ${b.name.padEnd(10)} ${b.title}`),
    "",
    "Settings come from NSH_BENCH_* environment variables; see bench/README.md.",
  ].join("\n");
}

const args = process.argv.slice(2);
if (args.includes("--help") || args.includes("-h")) {
  console.log(usage());
  process.exit(0);
}
const unknown = args.filter((a) => !BENCHES.some((b) => b.name === a));
if (unknown.length > 0) {
  console.error(`unknown benchmark${unknown.length > 1 ? "s" : ""}: ${unknown.join(", ")}\n\n${usage()}`);
  process.exit(2);
}
if (!fs.existsSync(SIGSTOP)) {
  console.error(`${path.relative(process.cwd(), SIGSTOP)} is missing: run npm run build first`);
  process.exit(1);
}
const selected = args.length > 0 ? BENCHES.filter((b) => args.includes(b.name)) : BENCHES;

// Clean-ups (cgroups, swap file, process groups) run on normal exit and on signals. They are
// synchronous; the lab's own exit hook (test/lab/proc.ts) then sweeps the lab's processes.
process.on("exit", runCleanups);
for (const [sig, n] of [["SIGINT", 2], ["SIGTERM", 15], ["SIGHUP", 1]] as const) {
  process.on(sig, () => {
    process.stderr.write(`\nbench: ${sig}, cleaning up\n`);
    runCleanups();
    process.exit(128 + n);
  });
}

const binary = snapshotSigstop();
const nixVersion = spawnSync("nix", ["--version"], { encoding: "utf8" }).stdout?.trim() ?? "?";
const host = machine();
fs.mkdirSync(RESULTS, { recursive: true });
const stamp = new Date().toISOString().replace(/[:.]/g, "-");
console.log(`nsh benchmarks, ${new Date().toISOString()}: ${host.distro}, ${host.cores} cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, kernel ${host.kernel}; ${nixVersion}; dist/nsh built ${binary.mtime}`);

let failed = 0;
for (const b of selected) {
  console.log(`\n## ${b.name}: ${b.title}\n`);
  const started = Date.now();
  try {
    const r = await b.run();
    for (const t of r.tables) console.log(`${t}\n`);
    for (const n of r.notes) console.log(n);
    const file = path.join(RESULTS, `${stamp}-${b.name}.json`);
    const json = { name: b.name, title: b.title, date: new Date().toISOString(), seconds: (Date.now() - started) / 1000, machine: host, nix: nixVersion, binary, tables: r.tables, notes: r.notes, data: r.data };
    fs.writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
    console.log(`\n(${((Date.now() - started) / 1000).toFixed(0)} s; results in ${path.relative(process.cwd(), file)})`);
  } catch (e) {
    failed++;
    console.log(`FAILED: ${(e as Error).stack ?? e}`);
  }
}
process.exitCode = failed > 0 ? 1 : 0;
