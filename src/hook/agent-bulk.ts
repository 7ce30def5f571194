// Big inputs and outputs between the hook and the job's agent go through OpenSSH's `ssh` (C crypto,
// sendfile from the local store's files), like `nsh copy` does: a second serve session, through the
// agent's bridge command, opened only when the first NAR of at least `openssh-min-size` comes up.
// If `ssh` cannot get in, the transfer stays on the ssh2 session and the build log says why.
import type { ServeClient } from "../nix/serve-client.ts";
import type { CopyDeps } from "../remote/copy.ts";
import type { Destination } from "../remote/destination.ts";
import { openBulkServe, type BulkSession } from "../remote/openssh.ts";
import type { SshPool } from "../remote/ssh.ts";
import { bridgeCommand } from "./agent-channels.ts";

export interface AgentBulk {
  /** What copyClosure takes for one direction; undefined when bulk transfers are off. */
  deps(side: "to" | "from"): CopyDeps["bulk"];
  close(): Promise<void>;
}

export interface AgentBulkTarget {
  pool: SshPool;
  node: Destination;
  agentPath: string;
  jobDir: string;
  storeDir: string;
  /** openssh-min-size: 0 turns bulk transfers off. */
  minBytes: number;
  /** How the session is named in progress lines. */
  label: string;
  log: (msg: string) => void;
}

export function agentBulk(t: AgentBulkTarget): AgentBulk {
  let session: Promise<BulkSession | undefined> | undefined;
  const open = (): Promise<ServeClient | undefined> =>
    (session ??= openBulkServe(t.pool, t.node, bridgeCommand(t.agentPath, t.jobDir, "serve"), t.storeDir, t.log, t.label)).then((s) => s?.client);
  return {
    deps: (side) => (t.minBytes > 0 ? { side, minBytes: t.minBytes, open } : undefined),
    async close() {
      await session?.then((s) => s?.close()).catch(() => {});
    },
  };
}
