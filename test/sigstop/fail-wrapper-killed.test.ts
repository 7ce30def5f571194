// Expected: if the wrapper itself is SIGKILLed while nix is stopped, its guard continues nix (at once: it
// sees its stdin close), so nix finishes its evaluation with the right result: in direct mode nix talks to
// the daemon itself; in relay mode (--relay) the guard keeps relaying nix's daemon traffic until nix
// exits. Once nix is done the guard removes the wrapper's runtime directory. (Nothing else would ever
// continue nix: the bounds below only leave a loaded machine room, they still catch "never".)
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { startNixLab, type NixLab } from "../lab/nix.ts";
import { SIGSTOP, findNix, runtimeDirOf, salt, state, waitFor } from "./helpers.ts";

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
  await waitFor(() => state(pid) === "T", 30000, "nix stopped");
  const runtimeDir = runtimeDirOf(pid);
  expect(fs.existsSync(runtimeDir)).toBe(true); // the directory whose removal is checked below
  wrapper.kill("SIGKILL");
  await wrapper.exited;
  await waitFor(() => state(pid) !== "T", 30000, "nix continued after the wrapper's death");
  await waitFor(() => state(pid) === undefined || state(pid) === "Z", 30000, "nix to finish");
  fs.closeSync(fd);
  expect(fs.readFileSync(out, "utf8")).toContain(`value = "ifd-${s}"`);
  // The guard leaves no runtime directory behind once nix is done.
  await waitFor(() => !fs.existsSync(runtimeDir), 30000, `the runtime directory ${runtimeDir} to be removed`);
});
