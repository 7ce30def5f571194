// Placing nsh itself in the cluster's shared state directory, once per version: the job runs it as
// its agent. The binary is named by its hash, so jobs of different nsh versions never mix, and it
// is uploaded to a temporary name and renamed, so a job never starts a half-written file.
import fs from "node:fs";
import path from "node:path";
import type { Destination } from "../remote/destination.ts";
import { shellQuote, type SshPool } from "../remote/ssh.ts";
import { countForGc } from "../util/gc-pressure.ts";
import { compiled } from "../util/self.ts";
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

/** Where the agent binary of this nsh lives on the cluster. */
export async function agentPathOnCluster(clusterStateDir: string, localStateDir: string): Promise<string> {
  if (!compiled) throw new Error("the job agent is nsh's compiled binary: run the hook from dist/nsh (npm run build)");
  return agentBinaryPath(clusterStateDir, await selfHash(localStateDir));
}

/**
 * Makes sure the agent binary and the job's directory exist on the cluster; one round trip when
 * the binary (`bin`, from agentPathOnCluster) is already there; says whether it had to be uploaded.
 */
export async function ensureAgent(pool: SshPool, login: Destination, bin: string, jobDir: string): Promise<{ path: string; uploaded: boolean }> {
  const q = shellQuote;
  const check = await pool.runCommand(login, `mkdir -p ${q(jobDir)} && chmod 700 ${q(path.posix.dirname(jobDir))} && { test -x ${q(bin)} && echo present || echo missing; }`);
  if (check.code !== 0) throw new Error(`cannot prepare ${jobDir} on ${login.text}: ${check.stderr.trim() || `exit ${check.code}`}`);
  if (check.stdout.trim() === "present") return { path: bin, uploaded: false };
  const tmp = `${bin}.upload-${process.pid}`;
  const up = await pool.exec([login], `mkdir -p ${q(path.posix.dirname(bin))} && cat > ${q(tmp)} && chmod 755 ${q(tmp)} && mv -f ${q(tmp)} ${q(bin)}`);
  for await (const chunk of Bun.file(process.execPath).stream()) {
    await up.write(chunk);
    countForGc(chunk.length);
  }
  await up.end();
  const status = await up.exited;
  if (status.code !== 0) throw new Error(`uploading nsh to ${login.text}:${bin} failed: ${up.stderrTail().trim() || `exit ${status.code}`}`);
  return { path: bin, uploaded: true };
}
