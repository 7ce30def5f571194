// Big inputs and outputs between the hook and the job's node go through OpenSSH's `ssh` (C crypto,
// sendfile from the local store's files), like `nsh copy` does: a second serve session, opened only
// when the first NAR of at least `openssh-min-size` comes up. It runs `nix-store --serve --write`
// on the node's store directly (remote-store, remote-nix-bin-dir), not through the agent: moving
// NARs needs no allocation (the build itself still runs in the agent's session), and two JavaScript
// relays on the node (bridge and agent) cost CPU the copy needs (a 512 MiB upload: 3.0 s through
// them, 2.2–2.9 s direct; bench/README.md). If `ssh` cannot get in, the transfer stays on
// the ssh2 session and the build log says why.
import type { ServeClient } from "../nix/serve-client.ts";
import type { CopyDeps } from "../remote/copy.ts";
import type { Destination } from "../remote/destination.ts";
import { remoteServeCommand } from "../remote/open-store.ts";
import { openBulkServe, type BulkSession } from "../remote/openssh.ts";
import type { SshPool } from "../remote/ssh.ts";
import { parseJobEnvironment } from "./job-plan.ts";

export interface NodeBulk {
  /** What copyClosure takes for one direction; undefined when bulk transfers are off. */
  deps(side: "to" | "from"): CopyDeps["bulk"];
  close(): Promise<void>;
}

export interface NodeBulkTarget {
  pool: SshPool;
  node: Destination;
  /** remote-store and remote-nix-bin-dir, as the agent uses them. */
  remoteStore?: string;
  nixBinDir?: string;
  /** job-environment: the node's nix-store sees what the job's does (NIX_CONF_DIR, NIX_STATE_DIR…). */
  environment: readonly string[];
  /** The store directory of the paths (the serve client's). */
  storeDir: string;
  /** store-dir: given to the node's nix-store as the job's agent gets it (NIX_STORE_DIR). */
  remoteStoreDir?: string;
  /** openssh-min-size: 0 turns bulk transfers off. */
  minBytes: number;
  /** How the session is named in progress lines. */
  label: string;
  log: (msg: string) => void;
}

/** The node's `nix-store --serve --write`, in the job's environment: store-dir, then job-environment (pure). */
export function bulkServeCommand(t: Pick<NodeBulkTarget, "remoteStore" | "nixBinDir" | "environment" | "remoteStoreDir">): string {
  const environment = parseJobEnvironment(t.environment);
  return remoteServeCommand({ remoteStore: t.remoteStore, nixBinDir: t.nixBinDir, storeDir: t.remoteStoreDir, environment });
}

export function nodeBulk(t: NodeBulkTarget): NodeBulk {
  let session: Promise<BulkSession | undefined> | undefined;
  let closed: Promise<void> | undefined;
  const open = (): Promise<ServeClient | undefined> =>
    (session ??= openBulkServe(t.pool, t.node, bulkServeCommand(t), t.storeDir, t.log, t.label)).then((s) => s?.client);
  return {
    deps: (side) => (t.minBytes > 0 ? { side, minBytes: t.minBytes, open } : undefined),
    // Closed when the agent is told "done", and again on the way out of any failure: once.
    close: () => (closed ??= (session ?? Promise.resolve(undefined)).then((s) => s?.close()).catch(() => {})),
  };
}
