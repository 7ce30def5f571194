// The job agent on its own (no scheduler): it waits for the hook on its socket, serves a serve
// protocol session through `nsh __agent-connect` with the build log streamed to a log client, then
// collects garbage and exits when told "done"; with nobody left connected it ends by itself.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { ServeClient } from "../../src/nix/serve-client.ts";
import { basicDerivation } from "../../src/nix/serve-protocol.ts";
import { parseDerivation } from "../../src/nix/derivation.ts";
import { spawnDuplex } from "../../src/remote/local-process.ts";
import { startNixLab, type NixLab } from "../lab/nix.ts";
import { NSH } from "./helpers.ts";

let lab: NixLab;
beforeAll(async () => {
  lab = await startNixLab({ name: "agent" });
});
afterAll(async () => {
  await lab?.cleanup();
});

test("serve session and build log through the agent, then done", async () => {
  const jobDir = fs.mkdtempSync(path.join(lab.root, "job-"));
  const store = `local?root=${path.join(lab.root, "node")}`;
  // Connect first: the bridge waits for the agent's socket to appear.
  const log = spawnDuplex([NSH, "__agent-connect", jobDir, "log"], { env: lab.env });
  const lines: string[] = [];
  log.onStderrLine = () => {};
  const logText = (async () => {
    let text = "";
    const r = log.stdout as ReadableStreamDefaultReader<Uint8Array>;
    for (;;) {
      const c = await r.read();
      if (c.done) return text;
      text += new TextDecoder().decode(c.value);
      lines.push(text);
    }
  })();
  const agent = Bun.spawn([NSH, "__agent", jobDir, "--remote-store", store, "--collect-garbage"], { env: lab.env, stdio: ["ignore", "inherit", "inherit"] });
  const serve = await ServeClient.open(spawnDuplex([NSH, "__agent-connect", jobDir, "serve"], { env: lab.env, describe: "agent" }), lab.storeDir);
  const inst = await lab.run(["nix-instantiate", lab.expr("remote"), "--argstr", "salt", `agent${Date.now()}`]);
  const drvPath = inst.stdout.trim();
  const drv = parseDerivation(fs.readFileSync(drvPath, "utf8"));
  const result = await serve.buildDerivation(drvPath, basicDerivation(drv, []));
  expect(result.statusName).toBe("Built");
  const out = drv.outputs.get("out")!.path;
  expect((await serve.queryValidPaths([out])).has(out)).toBe(true);
  await serve.close();
  await log.write(new TextEncoder().encode("done\n"));
  expect(await agent.exited).toBe(0);
  const text = await logText;
  expect(text).toContain("building remote agent");
  expect(text).toContain("bye");
  expect(fs.readFileSync(path.join(jobDir, "build.log"), "utf8")).toContain("collect-garbage: exit 0");
  // collect-garbage removed the output nobody holds on to.
  expect((await lab.run(["nix-store", "--store", store, "--check-validity", out])).code).not.toBe(0);
});

test("the hook goes away: the agent ends the job by itself", async () => {
  const jobDir = fs.mkdtempSync(path.join(lab.root, "job-"));
  const agent = Bun.spawn([NSH, "__agent", jobDir, "--orphan-grace", "1"], { env: lab.env, stdio: ["ignore", "inherit", "inherit"] });
  const log = spawnDuplex([NSH, "__agent-connect", jobDir, "log"], { env: lab.env });
  await Bun.sleep(500);
  log.close(); // the hook was SIGKILLed: its ssh channel and the bridge die
  const t0 = Date.now();
  expect(await agent.exited).toBe(3);
  expect(Date.now() - t0).toBeLessThan(5000);
  expect(fs.readFileSync(path.join(jobDir, "build.log"), "utf8")).toContain("the hook went away");
});
