// Expected: Ctrl-C (SIGINT to the foreground process group) while nix is stopped continues nix so it
// can act on the signal; nix, the wrapper, its guard and its notifiers all exit, nothing is left
// stopped or orphaned, and the private runtime directory is removed. SIGTERM to the wrapper alone
// reaches nix the same way.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import { startNixLab, type NixLab } from "../lab/nix.ts";
import { findNix, processesMentioning, salt, spawnSigstop, state, waitFor } from "./helpers.ts";

let lab: NixLab;
beforeAll(async () => {
  lab = await startNixLab({ daemon: true, name: "int" });
});
afterAll(async () => {
  await lab?.cleanup();
});

const sigstopDirs = () => new Set(fs.readdirSync("/tmp").filter((d) => d.startsWith("nix-sigstop-") && d !== "nix-sigstop-shared"));

test.each([
  ["SIGINT to the process group (Ctrl-C)", true, "SIGINT"],
  ["SIGTERM to the wrapper", false, "SIGTERM"],
] as const)("%s: everything exits", async (_name, group, signal) => {
  const before = sigstopDirs();
  const expr = `import ${lab.expr("ifd-sleep")} { salt = "${salt()}"; sleep = "30"; }`;
  const p = spawnSigstop(lab, ["eval", "--store", "daemon", "--impure", "--expr", expr]);
  const pid = await findNix(p.pid);
  await waitFor(() => state(pid) === "T", 10000, "nix stopped");
  const t0 = Date.now();
  process.kill(group ? -p.pid : p.pid, signal);
  const code = await p.exited;
  expect(code).not.toBe(0);
  expect(Date.now() - t0).toBeLessThan(10000);
  expect(state(pid) === undefined || state(pid) === "Z").toBe(true);
  // The guard, notifiers and hook of this run go away too (the daemon itself stays).
  await waitFor(() => processesMentioning("__sigstop").length === 0, 10000, `helpers to exit: ${JSON.stringify(processesMentioning("__sigstop"))}`);
  expect(processesMentioning(lab.root).filter((x) => x.state === "T")).toEqual([]);
  const left = [...sigstopDirs()].filter((d) => !before.has(d));
  expect(left).toEqual([]);
});
