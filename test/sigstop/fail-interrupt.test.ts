// Expected: Ctrl-C (SIGINT to the foreground process group) while nix is stopped continues nix so it
// can act on the signal; nix, the wrapper, its guard and its notifiers all exit, nothing is left
// stopped or orphaned, and the private runtime directory is removed. SIGTERM to the wrapper alone
// reaches nix the same way.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import { startNixLab, type NixLab } from "../lab/nix.ts";
import { findNix, processesMentioning, runtimeDirOf, salt, spawnSigstop, state, waitFor } from "./helpers.ts";

let lab: NixLab;
beforeAll(async () => {
  lab = await startNixLab({ daemon: true, name: "int" });
});
afterAll(async () => {
  await lab?.cleanup();
});

test.each([
  ["SIGINT to the process group (Ctrl-C)", true, "SIGINT"],
  ["SIGTERM to the wrapper", false, "SIGTERM"],
] as const)("%s: everything exits", async (_name, group, signal) => {
  const expr = `import ${lab.expr("ifd-sleep")} { salt = "${salt()}"; sleep = "60"; }`;
  const p = spawnSigstop(lab, ["eval", "--store", "daemon", "--impure", "--expr", expr]);
  const pid = await findNix(p.pid);
  await waitFor(() => state(pid) === "T", 30000, "nix stopped");
  const runtimeDir = runtimeDirOf(pid);
  expect(fs.existsSync(runtimeDir)).toBe(true); // the directory whose removal is checked below
  process.kill(group ? -p.pid : p.pid, signal);
  // nix's build sleeps 60 s: exiting well before that means the signal, not the build's end, ended it.
  const code = await Promise.race([p.exited, Bun.sleep(45000).then(() => "still running")]);
  expect(code).not.toBe(0);
  expect(code).not.toBe("still running");
  expect(state(pid) === undefined || state(pid) === "Z").toBe(true);
  // The guard, notifiers and hook of this run go away too (the daemon itself stays).
  // (This lab's only: other test files may run nix-sigstop at the same time.)
  const helpers = () => processesMentioning(lab.root).filter((x) => x.cmd.includes("__sigstop"));
  await waitFor(() => helpers().length === 0, 30000, `helpers to exit: ${JSON.stringify(helpers())}`);
  expect(processesMentioning(lab.root).filter((x) => x.state === "T")).toEqual([]);
  expect(fs.existsSync(runtimeDir)).toBe(false);
}, 120000);
