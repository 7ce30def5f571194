// Why an SSH connection failed, in words a user can act on (pure: the error and what the attempt
// noticed on the way in, a sentence out).
import type { AuthenticationType } from "ssh2";
import type { ResolvedHost } from "./ssh-config.ts";

export type SshErr = Error & { level?: string; code?: string };

/** What a connection attempt noticed on the way. */
export interface ConnectState {
  hostKeyProblem?: string;
  tried: string[];
  notes: string[];
  serverMethods: AuthenticationType[] | null;
  agentPath?: string;
}

/** Why a connection failed, said for a person: the error, with what was tried and noticed on the way. */
export function explainConnectError(err: SshErr, host: ResolvedHost, st: ConnectState): string {
  const addr = `${host.hostname}:${host.port}`;
  const notes = st.notes.length > 0 ? `; ${st.notes.join("; ")}` : "";
  if (st.hostKeyProblem) return st.hostKeyProblem;
  if (err.level === "client-authentication") {
    const offered = st.serverMethods && !st.serverMethods.includes("publickey")
      ? ` (the server only offers ${st.serverMethods.join(", ")}; nsh uses keys)`
      : "";
    const agent = st.agentPath ? "" : "; no ssh-agent used (SSH_AUTH_SOCK unset or IdentityAgent none)";
    const tried = st.tried.length > 0 ? st.tried.join(", ") : "no keys";
    return `authentication failed for user ${host.user}${offered}: tried ${tried}${agent}${notes}`;
  }
  switch (err.code) {
    case "ECONNREFUSED": return `connection refused by ${addr} (is sshd running there, on that port?)`;
    case "ENOTFOUND": case "EAI_AGAIN": case "EAI_NONAME":
      return `cannot resolve host name ${host.hostname} (DNS: ${err.code})`;
    case "ETIMEDOUT": return `timed out connecting to ${addr}`;
    case "EHOSTUNREACH": case "ENETUNREACH": return `${addr} is unreachable (${err.code})`;
  }
  if (err.level === "client-timeout") {
    const timeout = `the connect timeout: ${host.connectTimeoutFrom}`;
    return `no SSH handshake with ${addr} within ${host.connectTimeoutMs / 1000} s (${timeout}; is it an SSH server?)`;
  }
  if (err.code === "ECONNRESET" || /before handshake|during the SSH handshake/.test(err.message)) {
    return `${addr} closed the connection before the SSH handshake finished (${err.message}; is it an SSH server?)`;
  }
  return `${err.message}${notes}`;
}
