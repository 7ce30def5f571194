// Pure: which upstream the proxy talks to, for whatever store nix would use (nix-protocols.md §3).

export type Upstream =
  /** A daemon socket: connect per client connection. */
  | { kind: "socket"; path: string; store: string }
  /** A local store nix would open directly: run a private `nix-daemon --stdio` per connection. */
  | { kind: "stdio"; store: string }
  | { kind: "unsupported"; store: string; reason: string };

export interface StoreFacts {
  env: Record<string, string | undefined>;
  /** Whether this user can write the Nix state directory (root usually can): `auto` then means local. */
  stateDirWritable: boolean;
  socketExists: (path: string) => boolean;
}

export function stateDir(env: Record<string, string | undefined>): string {
  return env.NIX_STATE_DIR || "/nix/var/nix";
}

export function defaultSocket(env: Record<string, string | undefined>): string {
  return env.NIX_DAEMON_SOCKET_PATH || `${stateDir(env)}/daemon-socket/socket`;
}

export function resolveUpstream(store: string, facts: StoreFacts): Upstream {
  const s = store.trim();
  if (s === "daemon") return { kind: "socket", path: defaultSocket(facts.env), store: s };
  if (s.startsWith("unix://")) {
    const path = s.slice("unix://".length).split("?")[0]!;
    return path ? { kind: "socket", path, store: s } : { kind: "socket", path: defaultSocket(facts.env), store: s };
  }
  if (s === "auto" || s === "") {
    // Nix's openFromNonUri: local when the state dir is writable, else the daemon if its socket exists.
    if (facts.stateDirWritable) return { kind: "stdio", store: "local" };
    const path = defaultSocket(facts.env);
    if (facts.socketExists(path)) return { kind: "socket", path, store: "daemon" };
    return { kind: "stdio", store: "local" };
  }
  if (s === "local" || s.startsWith("local?") || s.startsWith("/")) return { kind: "stdio", store: s };
  const scheme = /^([a-z0-9+.-]+):\/\//i.exec(s)?.[1];
  return {
    kind: "unsupported",
    store: s,
    reason: scheme
      ? `builds for '${scheme}://' stores do not run through a build hook on this machine`
      : `'${s}' is not a store nix-sigstop understands`,
  };
}
