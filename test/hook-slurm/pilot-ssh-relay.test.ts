// Expected: the hooks of pilot builds share the machine's ssh relay for their streams to the agents
// (ssh-relay-idle-time, default 60 s): a relay serves from the state directory, and the node's sshd
// sees fewer ssh connections for the same builds than with the relay off (ssh-relay-idle-time = 0,
// where no relay starts and each hook connects itself). The outputs are right either way. A hook that
// takes the pilot through the relay does not load the ssh library at all (its CPU is what each build
// pays on the submitting machine): fewer hooks load it than with the relay off.
import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { startClusterLab, type ClusterLab } from "../lab/cluster.ts";
import { acceptedConnections, relayPids, waitFor } from "../remote/relay-helpers.ts";
import { salt } from "./helpers.ts";

let lab: ClusterLab;
// The hooks append "ssh2" here when they load it (src/sys/no-cpu-features.ts); the relay is not given the variable.
const traceDir = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-relay-loads-"));
const trace = path.join(traceDir, "loaded");
const ssh2Loads = () =>
  fs.existsSync(trace) ? fs.readFileSync(trace, "utf8").split("\n").filter((l) => l === "ssh2").length : 0;
beforeAll(async () => {
  lab = await startClusterLab("pilot-relay", "slurm", { NSH_DEBUG_LOADED: trace });
}, 120000);
afterAll(async () => {
  for (const pid of relayPids(lab?.nix.root ?? "/nonexistent")) process.kill(pid, "SIGKILL");
  await lab?.cleanup();
  fs.rmSync(traceDir, { recursive: true, force: true });
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
  const loads0 = ssh2Loads();
  const without = await wide(4);
  const loadsWithout = ssh2Loads() - loads0;
  expect(relayPids(lab.nix.root)).toEqual([]);
  lab.writeConf("pilot-idle-time = 20\npilot-max-jobs = 1");
  const withRelay = await wide(4);
  const loadsWith = ssh2Loads() - loads0 - loadsWithout;
  await waitFor("the relay", () => relayPids(lab.nix.root).length === 1);
  const sockets = fs.readdirSync(path.join(lab.nix.root, "nsh-state", "ssh-relay")).filter((f) => f.endsWith(".sock"));
  expect(sockets.length).toBe(1);
  console.log(`sshd connections for 4 pilot builds: ${without} without the relay, ${withRelay} with it`);
  console.log(`hooks that loaded ssh2 for 4 pilot builds: ${loadsWithout} without the relay, ${loadsWith} with it`);
  expect(withRelay).toBeLessThan(without);
  expect(loadsWithout).toBe(4);
  expect(loadsWith).toBeLessThan(loadsWithout);
}, 900_000);
