// Pure: how the hook and the job's agent talk. A client connects to the agent's unix socket in the
// job directory and sends one line saying what it wants:
//   "serve"  the connection becomes a serve protocol session with a `nix-store --serve --write`
//            the agent runs inside the job (so the build runs in the job's allocation);
//   "log"    the agent first answers one status line, `nsh-agent ready` or `nsh-agent error
//            <message>` (it cannot build: no nix-store in the job), then streams every line those
//            sessions write on stderr (the build log); the client may send "done" on it: the
//            hook has what it came for, the agent may go. The agent ends with the line "bye".

export const AGENT_SOCKET = "agent.sock";
export const AGENT_LOG = "build.log";

export type AgentMode = "serve" | "log";

export const READY_PREFIX = "nsh-agent ";

/** Pure: the agent's status line (the first on a log connection). */
export function parseStatusLine(line: string): { ok: true } | { ok: false; error: string } | undefined {
  if (!line.startsWith(READY_PREFIX)) return undefined;
  const rest = line.slice(READY_PREFIX.length);
  if (rest.trim() === "ready") return { ok: true };
  if (rest.startsWith("error ")) return { ok: false, error: rest.slice("error ".length) };
  return undefined;
}

export const statusLine = (error?: string) => `${READY_PREFIX}${error === undefined ? "ready" : `error ${error.replace(/\n/g, " ")}`}\n`;

export function parseHello(line: string): AgentMode | undefined {
  const w = line.trim();
  return w === "serve" || w === "log" ? w : undefined;
}

export interface AgentOptions {
  jobDir: string;
  remoteStore?: string;
  nixBinDir?: string;
  collectGarbage: boolean;
  /** Features the cluster offers (nsh.conf system-features): the node's Nix must accept them too. */
  systemFeatures: string[];
  /** With no client connected for this long after the first one came, the hook is gone: end the job. */
  orphanGraceMs: number;
  /** If no client ever connects within this long, give the allocation back. */
  firstContactTimeoutMs: number;
  /** Pilot mode (pilot-idle-time): after a build the agent stays this long for another one (0: it ends the job). */
  pilotIdleMs: number;
}

export function parseAgentArgs(argv: readonly string[]): AgentOptions {
  const [jobDir, ...rest] = argv;
  if (!jobDir) throw new Error("usage: nsh __agent JOBDIR [--remote-store S] [--nix-bin-dir D] [--collect-garbage]");
  const o: AgentOptions = { jobDir, collectGarbage: false, systemFeatures: [], orphanGraceMs: 15000, firstContactTimeoutMs: 600000, pilotIdleMs: 0 };
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    const val = () => {
      const v = rest[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === "--remote-store") o.remoteStore = val();
    else if (a === "--nix-bin-dir") o.nixBinDir = val();
    else if (a === "--collect-garbage") o.collectGarbage = true;
    else if (a === "--system-features") o.systemFeatures = val().split(/\s+/).filter(Boolean);
    else if (a === "--orphan-grace") o.orphanGraceMs = Number(val()) * 1000;
    else if (a === "--first-contact-timeout") o.firstContactTimeoutMs = Number(val()) * 1000;
    else if (a === "--pilot-idle") o.pilotIdleMs = Number(val()) * 1000;
    else throw new Error(`unknown agent argument '${a}'`);
  }
  return o;
}

/** The agent's command line, as the job script runs it (shell-quoted by the caller). */
export function agentArgs(o: Pick<AgentOptions, "jobDir" | "remoteStore" | "nixBinDir" | "collectGarbage"> & {
  systemFeatures?: string[];
  pilotIdleSec?: number;
  firstContactSec?: number;
}): string[] {
  return [
    "__agent",
    o.jobDir,
    ...(o.remoteStore && o.remoteStore !== "auto" ? ["--remote-store", o.remoteStore] : []),
    ...(o.nixBinDir ? ["--nix-bin-dir", o.nixBinDir] : []),
    ...(o.collectGarbage ? ["--collect-garbage"] : []),
    ...(o.systemFeatures?.length ? ["--system-features", o.systemFeatures.join(" ")] : []),
    ...(o.pilotIdleSec ? ["--pilot-idle", String(o.pilotIdleSec)] : []),
    ...(o.firstContactSec ? ["--first-contact-timeout", String(o.firstContactSec)] : []),
  ];
}
