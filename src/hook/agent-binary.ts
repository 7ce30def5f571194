// Placing nsh itself in the cluster's shared state directory, once per version: the job runs it as
// its agent. The binary is named by its hash, so jobs of different nsh versions never mix; it is
// uploaded to a temporary name, verified and renamed, so a job never starts a half-written file
// (the scripts and why: agent-place.ts).
import fs from "node:fs";
import path from "node:path";
import type { Destination } from "../remote/destination.ts";
import type { SshPool } from "../remote/ssh.ts";
import { countForGc } from "../util/gc-pressure.ts";
import { compiled } from "../util/self.ts";
import { lineReader } from "./agent-channels.ts";
import { checkCommand, placeCommand, type AgentIdentity } from "./agent-place.ts";
import { agentBinaryPath } from "./job-plan.ts";

/** sha256 of our own executable, remembered next to the state so a hook does not hash 100 MB per build. */
export async function selfHash(stateDir: string): Promise<string> {
  const exe = process.execPath;
  const st = fs.statSync(exe);
  const memo = path.join(stateDir, "self-hash.json");
  const key = `${exe}:${st.size}:${st.mtimeMs}`;
  try {
    const m = JSON.parse(fs.readFileSync(memo, "utf8")) as { key: string; hash: string };
    if (m.key === key) return m.hash;
  } catch {}
  const h = new Bun.CryptoHasher("sha256");
  for await (const chunk of Bun.file(exe).stream()) {
    h.update(chunk);
    countForGc(chunk.length);
  }
  const hash = h.digest("hex");
  try {
    fs.writeFileSync(memo, JSON.stringify({ key, hash }));
  } catch {}
  return hash;
}

/** This nsh's executable as the agent: where it goes on the cluster, and what it must be there. */
export interface AgentSource extends AgentIdentity {
  /** The bytes to upload. */
  chunks(): AsyncIterable<Uint8Array>;
}

/** Where the agent binary of this nsh lives on the cluster, and its bytes. */
export async function agentPathOnCluster(clusterStateDir: string, localStateDir: string): Promise<AgentSource> {
  if (!compiled) throw new Error("the job agent is nsh's compiled binary: run the hook from dist/nsh (npm run build)");
  const sha256 = await selfHash(localStateDir);
  const exe = process.execPath;
  const bin = agentBinaryPath(clusterStateDir, sha256);
  return { bin, sha256, size: fs.statSync(exe).size, chunks: () => Bun.file(exe).stream() };
}

export interface AgentPlacement {
  path: string;
  /** The check found no verified binary: a job submitted before it may have started without one. */
  wasMissing: boolean;
  /** This hook uploaded it (false when another hook placed it while this one waited for the lock). */
  uploaded: boolean;
}

/**
 * Makes sure the agent binary and the job's directory exist on the cluster: one round trip when a
 * verified binary is there. Otherwise it is placed under the cluster-side lock (agent-place.ts):
 * verified before it is renamed into place, so an upload cut short installs nothing.
 */
export async function ensureAgent(
  pool: SshPool,
  login: Destination,
  agent: AgentSource,
  jobDir: string,
): Promise<AgentPlacement> {
  let check = await pool.runCommand(login, checkCommand(agent, jobDir));
  // A session that ended with neither exit status nor signal (seen under heavy load) says nothing about
  // the command, which only makes directories and looks: ask once more before failing the build.
  if (check.code === null && !check.signal) check = await pool.runCommand(login, checkCommand(agent, jobDir));
  const why = check.stderr.trim() || (check.signal ? `killed by ${check.signal}` : `exit ${check.code}`);
  if (check.code !== 0) throw new Error(`cannot prepare ${jobDir} on ${login.text}: ${why}`);
  if (check.stdout.trim() === "present") return { path: agent.bin, wasMissing: false, uploaded: false };
  const uploadId = `${process.pid}-${crypto.randomUUID().slice(0, 8)}`;
  const up = await pool.exec([login], placeCommand(agent, uploadId));
  const failed = (what: string) =>
    new Error(`placing nsh's agent at ${login.text}:${agent.bin} failed: ${up.stderrTail().trim() || what}`);
  try {
    const lines = lineReader(up.stdout);
    const first = await lines.next();
    if (first === "present") {
      // Another hook placed it while this one waited for the lock: nothing to send.
      await up.end().catch(() => {});
      return { path: agent.bin, wasMissing: true, uploaded: false };
    }
    if (first !== "send") throw failed(`it said '${first ?? "nothing"}' (exit ${(await up.exited).code})`);
    for await (const chunk of agent.chunks()) {
      await up.write(chunk);
      countForGc(chunk.length);
    }
    await up.end();
    const last = await lines.next();
    const status = await up.exited;
    if (status.code !== 0 || last !== "placed") throw failed(`exit ${status.code ?? status.signal}`);
    return { path: agent.bin, wasMissing: true, uploaded: true };
  } finally {
    up.close();
  }
}
