// Expected: the hooks of pilot builds share the machine's ssh relay for their streams to the agents
// (ssh-relay-idle-time, default 60 s): a relay serves from the state directory, and the node's sshd
// sees fewer ssh connections for the same builds than with the relay off (ssh-relay-idle-time = 0,
// where no relay starts and each hook connects itself). The outputs are right either way.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { acceptedConnections, relayPids, waitFor } from "../remote/relay-helpers.ts";
import { salt } from "./helpers.ts";

let lab: ClusterLab;
beforeAll(async () => {
  lab = await startClusterLab("pilot-relay", "slurm");
}, 120000);
afterAll(async () => {
  for (const pid of relayPids(lab?.nix.root ?? "/nonexistent")) process.kill(pid, "SIGKILL");
  await lab?.cleanup();
});

async function wide(n: number): Promise<number> {
  const before = acceptedConnections(lab.sshd.logFile);
  const s = salt();
  const r = await lab.nixBuild([lab.nix.expr("wide"), "--argstr", "salt", s, "--arg", "n", String(n)], 300_000);
  if (r.code !== 0) console.log(r.stderr.slice(-3000));
  expect(r.code).toBe(0);
  return acceptedConnections(lab.sshd.logFile) - before;
}

test("pilot builds go through one ssh relay, with fewer ssh connections than without it", async () => {
  // A fresh node store made by two Nix processes at once can fail (Nix 2.8): one build first.
  lab.writeConf("pilot-idle-time = 20\npilot-max-jobs = 1\nssh-relay-idle-time = 0");
  await wide(1);
  const without = await wide(4);
  expect(relayPids(lab.nix.root)).toEqual([]);
  lab.writeConf("pilot-idle-time = 20\npilot-max-jobs = 1");
  const withRelay = await wide(4);
  await waitFor("the relay", () => relayPids(lab.nix.root).length === 1);
  const sockets = fs.readdirSync(path.join(lab.nix.root, "nsh-state", "ssh-relay")).filter((f) => f.endsWith(".sock"));
  expect(sockets.length).toBe(1);
  console.log(`sshd connections for 4 pilot builds: ${without} without the relay, ${withRelay} with it`);
  expect(withRelay).toBeLessThan(without);
}, 900_000);
