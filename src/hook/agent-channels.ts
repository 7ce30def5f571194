// The hook's channels to the job's agent on its node. When the agent already listens, a channel is
// a plain ssh stream to its unix socket (OpenSSH's direct-streamlocal: no process starts on the
// node); otherwise, or where sshd forbids forwarding, it is `nsh __agent-connect` run over ssh,
// which waits for the socket to appear (inotify) and joins it to the channel.
import path from "node:path";
import { AGENT_SOCKET, type AgentMode } from "../agent/protocol.ts";
import type { Destination } from "../remote/destination.ts";
import { shellQuote, type SshDuplex, type SshPool } from "../remote/ssh.ts";

/** The command that bridges an ssh channel to the agent's socket (it waits for the socket). */
/** The bridge's command; `socketWaitSec` bounds its wait for the agent's socket (default 60 s; a pilot's: 0). */
export const bridgeCommand = (agentPath: string, jobDir: string, mode: AgentMode, socketWaitSec?: number) =>
  [agentPath, "__agent-connect", jobDir, mode, ...(socketWaitSec === undefined ? [] : [String(socketWaitSec)])]
    .map(shellQuote).join(" ");

/**
 * A channel to the agent. `listening`, when given, resolves once another channel heard the agent:
 * a direct attempt that came too early is then tried once more instead of starting a bridge.
 */
export async function openAgentChannel(
  pool: SshPool, node: Destination, agentPath: string, jobDir: string, mode: AgentMode, listening?: Promise<unknown>,
  socketWaitSec?: number,
): Promise<SshDuplex> {
  const direct = async () => {
    const d = await pool.connectUnix(node, path.posix.join(jobDir, AGENT_SOCKET));
    // What the bridge would say first: which session this is.
    await d.write(new TextEncoder().encode(`${mode}\n`));
    return d;
  };
  try {
    return await direct();
  } catch {}
  if (listening) {
    await listening;
    try {
      return await direct();
    } catch {}
  }
  // Not listening yet (or no forwarding): the bridge waits for it. An unreachable node fails here too, saying why.
  return pool.exec([node], bridgeCommand(agentPath, jobDir, mode, socketWaitSec));
}

/** Whole lines of a stream, one at a time; undefined at the end. */
export function lineReader(src: unknown): { next(): Promise<string | undefined> } {
  const reader = src as { read(): Promise<{ done: boolean; value?: Uint8Array }> };
  const dec = new TextDecoder();
  let partial = "";
  const ready: string[] = [];
  let ended = false;
  return {
    async next() {
      while (ready.length === 0 && !ended) {
        const r = await reader.read().catch(() => ({ done: true as const, value: undefined }));
        if (r.done || !r.value) {
          ended = true;
          if (partial) ready.push(partial);
          break;
        }
        const lines = (partial + dec.decode(r.value, { stream: true })).split("\n");
        partial = lines.pop() ?? "";
        ready.push(...lines);
      }
      return ready.shift();
    },
  };
}
