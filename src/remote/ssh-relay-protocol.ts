// The ssh relay's words (pure). A hook asks the machine's relay (`nsh __ssh-relay`, one per user and
// ssh settings) for a stream to a unix socket on a host, in one JSON line; the relay answers in one
// JSON line (ok, or why not, plus the warnings its pool gave while connecting, for the hook to
// print), then the connection carries the stream's bytes both ways. The relay's key names its socket:
// hooks whose ssh would resolve or verify differently never share a relay.
import type { SshSettings } from "./ssh-options.ts";

export const RELAY_PROTOCOL_VERSION = 1;
/** Longest request or reply line, newline excluded: a peer sending more is not speaking this protocol. */
export const RELAY_MAX_LINE = 16 * 1024;
/** Longest unix socket path (sun_path is 108 bytes with its NUL). */
export const MAX_SOCKET_PATH = 107;

export interface RelayRequest {
  /** The destination as written (user@host:port or an ssh config alias). */
  dest: string;
  /** The unix socket on that host. */
  socketPath: string;
}

export type RelayReply = { ok: true; warnings: string[] } | { ok: false; error: string; warnings: string[] };

export class RelayProtocolError extends Error {
  override name = "RelayProtocolError";
}

export const encodeRelayRequest = (r: RelayRequest): string =>
  `${JSON.stringify({ v: RELAY_PROTOCOL_VERSION, dest: r.dest, path: r.socketPath })}\n`;

export const encodeRelayReply = (r: RelayReply): string =>
  `${JSON.stringify(r.ok ? { v: RELAY_PROTOCOL_VERSION, ok: true, warnings: r.warnings }
    : { v: RELAY_PROTOCOL_VERSION, ok: false, error: r.error, warnings: r.warnings })}\n`;

function parseLine(line: string, what: string): Record<string, unknown> {
  if (line.length > RELAY_MAX_LINE) {
    throw new RelayProtocolError(`ssh relay ${what}: longer than ${RELAY_MAX_LINE} bytes`);
  }
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw new RelayProtocolError(`ssh relay ${what}: not JSON: ${JSON.stringify(line.slice(0, 80))}`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new RelayProtocolError(`ssh relay ${what}: expected a JSON object, got ${JSON.stringify(line.slice(0, 80))}`);
  }
  const o = v as Record<string, unknown>;
  if (o.v !== RELAY_PROTOCOL_VERSION) {
    const got = JSON.stringify(o.v);
    throw new RelayProtocolError(`ssh relay ${what}: protocol version ${got}, expected ${RELAY_PROTOCOL_VERSION}`);
  }
  return o;
}

const nonEmptyText = (v: unknown): v is string => typeof v === "string" && v.length > 0 && !/[\0\n]/.test(v);

/** A request line (without its newline); throws RelayProtocolError saying what is wrong. */
export function parseRelayRequest(line: string): RelayRequest {
  const o = parseLine(line, "request");
  if (!nonEmptyText(o.dest)) throw new RelayProtocolError("ssh relay request: 'dest' must be a non-empty string");
  if (!nonEmptyText(o.path) || !o.path.startsWith("/")) {
    throw new RelayProtocolError("ssh relay request: 'path' must be an absolute socket path");
  }
  return { dest: o.dest, socketPath: o.path };
}

/** A reply line (without its newline); throws RelayProtocolError saying what is wrong. */
export function parseRelayReply(line: string): RelayReply {
  const o = parseLine(line, "reply");
  const warnings = o.warnings ?? [];
  if (!Array.isArray(warnings) || !warnings.every((w) => typeof w === "string")) {
    throw new RelayProtocolError("ssh relay reply: 'warnings' must be a list of strings");
  }
  if (o.ok === true) return { ok: true, warnings };
  if (o.ok === false && typeof o.error === "string" && o.error.length > 0) {
    return { ok: false, error: o.error, warnings };
  }
  throw new RelayProtocolError("ssh relay reply: expected ok true, or ok false with an 'error' message");
}

/** Only the ssh settings go to the relay: a caller may hand its whole nsh.conf (a JWT in it, perhaps). */
export const relaySettings = (conf: SshSettings): SshSettings => ({
  "ssh-config": conf["ssh-config"], trusted: [...conf.trusted], "ssh-connect-timeout": conf["ssh-connect-timeout"],
});

/** What changes how ssh resolves a destination or authenticates, besides nsh.conf's ssh settings. */
export interface RelayIdentity {
  uid: number;
  home?: string;
  user?: string;
  authSock?: string;
  /** The relay's program (another nsh build must not answer for this one). */
  executable: string;
}

/** A short hash naming the relay for these settings: anything that differs gives another relay. */
export function relayKey(settings: SshSettings, id: RelayIdentity): string {
  const material = JSON.stringify([
    settings["ssh-config"], [...settings.trusted], settings["ssh-connect-timeout"],
    id.uid, id.home ?? null, id.user ?? null, id.authSock ?? null, id.executable,
  ]);
  return new Bun.CryptoHasher("sha256").update(material).digest("hex").slice(0, 20);
}

/**
 * Whether the relay directory may carry channels: ours and closed to others. Otherwise someone else
 * could have put a socket there that answers for the relay and sees every stream.
 */
export function relayDirProblem(
  st: { isDirectory: boolean; uid: number; mode: number }, myUid: number,
): string | undefined {
  if (!st.isDirectory) return "is not a directory";
  if (st.uid !== myUid) return `belongs to uid ${st.uid}, not ${myUid}`;
  if ((st.mode & 0o077) !== 0) return `is accessible to group or others (mode ${(st.mode & 0o777).toString(8)})`;
  return undefined;
}
