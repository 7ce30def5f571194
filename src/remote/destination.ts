// SSH destinations as users write them: `[user@]host[:port]`, `ssh://[user@]host[:port]`, IPv6 in
// brackets (`[::1]:2222`), and lists of them (comma-separated or repeated flags). Pure.

export interface Destination {
  /** The text it was parsed from, for messages. */
  readonly text: string;
  readonly user?: string;
  /** Host name, alias or address as given (IPv6 without brackets); the ssh config resolves aliases. */
  readonly host: string;
  /** Only when given; the ssh config (then 22) supplies it otherwise. */
  readonly port?: number;
}

export class DestinationError extends Error {
  override name = "DestinationError";
}

const fail = (text: string, why: string): never => {
  throw new DestinationError(`invalid ssh destination ${JSON.stringify(text)}: ${why}`);
};

function parsePort(text: string, port: string): number {
  if (!/^[0-9]{1,5}$/.test(port)) fail(text, `port ${JSON.stringify(port)} is not a number`);
  const n = Number(port);
  if (n < 1 || n > 65535) fail(text, `port ${n} is out of range 1-65535`);
  return n;
}

// Characters that cannot be part of a host: whitespace, and what a shell or URL would treat specially.
const BAD_HOST = /[\s/?#@\[\]'"`\\;&|<>()$]/;

export function parseDestination(input: string): Destination {
  const text = input.trim();
  if (text === "") fail(input, "empty");
  let rest = text;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(rest);
  if (scheme) {
    if (scheme[1]!.toLowerCase() !== "ssh") fail(text, `unsupported scheme ${scheme[1]}:// (only ssh://)`);
    rest = rest.slice(scheme[0].length);
    // A single trailing slash is harmless (ssh://host/); a path or query is not a destination.
    if (rest.endsWith("/")) rest = rest.slice(0, -1);
    if (/[/?#]/.test(rest)) fail(text, "a path or query is not allowed after the host");
  }

  let user: string | undefined;
  // OpenSSH splits at the last '@', so a user name may itself contain '@'.
  const at = rest.lastIndexOf("@");
  if (at >= 0) {
    user = rest.slice(0, at);
    rest = rest.slice(at + 1);
    if (user === "") fail(text, "empty user name before '@'");
    if (/[\s:/]/.test(user)) fail(text, `bad user name ${JSON.stringify(user)}`);
  }

  let host: string;
  let port: number | undefined;
  if (rest.startsWith("[")) {
    const close = rest.indexOf("]");
    if (close < 0) fail(text, "missing ']' after an IPv6 address");
    host = rest.slice(1, close);
    const after = rest.slice(close + 1);
    if (after !== "") {
      if (!after.startsWith(":")) fail(text, `unexpected ${JSON.stringify(after)} after ']'`);
      port = parsePort(text, after.slice(1));
    }
    if (!/^[0-9a-fA-F:.]+(%[\w.-]+)?$/.test(host) || !host.includes(":")) fail(text, `${JSON.stringify(host)} is not an IPv6 address`);
  } else {
    const colons = rest.split(":").length - 1;
    if (colons === 1) {
      const i = rest.indexOf(":");
      host = rest.slice(0, i);
      port = parsePort(text, rest.slice(i + 1));
    } else if (colons > 1) {
      // A bare IPv6 address: no port possible without brackets.
      if (!/^[0-9a-fA-F:.]+(%[\w.-]+)?$/.test(rest)) fail(text, "IPv6 addresses with a port need brackets: [addr]:port");
      host = rest;
    } else {
      host = rest;
    }
    if (BAD_HOST.test(host)) fail(text, `bad host name ${JSON.stringify(host)}`);
  }
  if (host === "") fail(text, "empty host name");
  if (host.startsWith("-")) fail(text, "a host name cannot start with '-'");
  return { text, user, host, port };
}

/** Several values (repeated flags), each possibly a comma-separated list; order is kept. */
export function parseDestinations(values: string | readonly string[]): Destination[] {
  const list = typeof values === "string" ? [values] : values;
  const out: Destination[] = [];
  for (const value of list) {
    const parts = value.split(",");
    for (const part of parts) {
      if (part.trim() === "") {
        if (parts.length > 1) throw new DestinationError(`invalid ssh destination list ${JSON.stringify(value)}: empty entry`);
        fail(part, "empty");
      }
      out.push(parseDestination(part));
    }
  }
  if (out.length === 0) throw new DestinationError("no ssh destination given");
  return out;
}

/** `user@host:port` with IPv6 bracketed; the inverse of parseDestination. */
export function formatDestination(d: { user?: string; host: string; port?: number }): string {
  const host = d.host.includes(":") ? `[${d.host}]` : d.host;
  return `${d.user !== undefined ? `${d.user}@` : ""}${d.port !== undefined ? `${host}:${d.port}` : host}`;
}
