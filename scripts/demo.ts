// The demo: a private Nix 2.8 lab, then one evaluation that holds a few hundred MB and imports from
// two derivations that take a few seconds each, run through nix-sigstop. It shows nix being stopped
// and continued, and the report: how long nix was stopped and how much memory it held.
import fs from "node:fs";
import path from "node:path";
import { startNixLab } from "../test/lab/nix.ts";

const sigstop = path.join(import.meta.dir, "..", "dist", "nix-sigstop");
const say = (s: string) => process.stdout.write(`\n\x1b[1m== ${s}\x1b[0m\n`);

const lab = await startNixLab({ daemon: true, name: "demo" });
try {
  say(`Nix lab: store ${lab.storeDir}, daemon pid ${lab.daemonPid}`);
  const salt = Date.now().toString(36);
  const expr = `let a = import ${lab.expr("ifd-mem")} { salt = "${salt}a"; sleep = "3"; listSize = 3000000; };
    b = import ${lab.expr("ifd-sleep")} { salt = "${salt}b"; sleep = "2"; }; in { a = a.value; inherit (a) sum; b = b.value; }`;
  const report = path.join(lab.root, "report.json");
  const cmd = [sigstop, "--verbose", "--report", report, "eval", "--store", "daemon", "--impure", "--json", "--expr", expr];
  say(`nix-sigstop --verbose --report report.json eval --store daemon --impure --json --expr '…two IFDs…'`);
  const t0 = Date.now();
  const p = Bun.spawn(cmd, { env: lab.env, stdio: ["ignore", "inherit", "inherit"] });
  const code = await p.exited;
  say(`exit status ${code} after ${((Date.now() - t0) / 1000).toFixed(1)} s; the JSON report:`);
  process.stdout.write(fs.readFileSync(report, "utf8"));
  process.exitCode = code;
} finally {
  await lab.cleanup();
}
