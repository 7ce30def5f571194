// Expected: if the wrapper itself is SIGKILLed while nix is stopped, its guard continues nix within
// 2 s, so nix finishes its evaluation with the right result: in direct mode nix talks to the daemon
// itself; in relay mode (--relay) the guard keeps relaying nix's daemon traffic until nix exits.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { startNixLab, type NixLab } from "../lab/nix.ts";
import { SIGSTOP, findNix, salt, state, waitFor } from "./helpers.ts";

let lab: NixLab;
beforeAll(async () => {
  lab = await startNixLab({ daemon: true, name: "kill" });
});
afterAll(async () => {
  await lab?.cleanup();
});

test.each<[string, string[]]>([
  ["direct", []],
  ["relay", ["--relay"]],
])("%s: SIGKILL of the wrapper while nix is stopped: nix continues and finishes", async (_mode, wrapperArgs) => {
  const dirs0 = new Set(fs.readdirSync("/tmp"));
  const s = salt();
  const out = path.join(lab.root, "killed.out");
  const fd = fs.openSync(out, "w");
  const expr = `import ${lab.expr("ifd-sleep")} { salt = "${s}"; sleep = "3"; }`;
  const wrapper = Bun.spawn([SIGSTOP, ...wrapperArgs, "eval", "--store", "daemon", "--impure", "--expr", expr], {
    env: lab.env,
    stdio: ["ignore", fd, fd],
    detached: true,
  });
  const pid = await findNix(wrapper.pid);
  await waitFor(() => state(pid) === "T", 10000, "nix stopped");
  wrapper.kill("SIGKILL");
  await wrapper.exited;
  const killedAt = Date.now();
  await waitFor(() => state(pid) !== "T", 2000, "nix continued within 2 s of the wrapper's death");
  expect(Date.now() - killedAt).toBeLessThan(2000);
  await waitFor(() => state(pid) === undefined || state(pid) === "Z", 20000, "nix to finish");
  fs.closeSync(fd);
  expect(fs.readFileSync(out, "utf8")).toContain(`value = "ifd-${s}"`);
  // The guard leaves no runtime directory behind once nix is done.
  const newDirs = () => fs.readdirSync("/tmp").filter((d) => d.startsWith("nix-sigstop-") && !dirs0.has(d));
  await waitFor(() => newDirs().length === 0, 3000, "the runtime directory to be removed");
});
