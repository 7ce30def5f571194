// SSH transport over ssh2: one authenticated connection per host, shared by many exec channels in a
// process (a new ssh connection costs ~350 ms; a channel on an open one costs one round trip). Hosts
// are tried in order, and when all fail the error names each host and why, with a way to fix it.
import * as fs from "node:fs";
import * as path from "node:path";
import "../sys/no-cpu-features.ts";
import type { AuthenticationType, Client, ClientChannel, NextAuthHandler, OpenSSHAgent, ParsedKey } from "ssh2";
import { type Destination, formatDestination, parseDestinations } from "./destination.ts";
import { type ChannelConn, channelDuplex, type RelayOpen, SshError, type SshDuplex } from "./ssh-channel.ts";
import {
  checkHostKey, fingerprintSha256, type KnownHostEntry, keyTypeLabel, keyTypeOfBlob, knownHostsLine, parseKnownHosts,
  parsePublicKey, preferredHostKeyAlgorithms,
} from "./known-hosts.ts";
import { coalesceWrites } from "./write-coalescer.ts";
import { loadIdentities, publicKeysOf, recordingAgent, type Ssh2 } from "./ssh-identities.ts";
import { explainConnectError, type SshErr } from "./ssh-errors.ts";
import { type HostDefaults, loadSshConfig, type ResolvedHost, resolveHost, type SshConfig } from "./ssh-config.ts";

export { SshError };
export type { SshDuplex } from "./ssh-channel.ts";

export interface SshPoolOptions {
  /** Parsed ssh config; otherwise read from configFile (like ssh -F) or ~/.ssh/config + /etc/ssh/ssh_config. */
  config?: SshConfig;
  configFile?: string;
  /** Pinned host keys ("ssh-ed25519 AAAA..."), from nsh.conf `trusted`, by alias or host name; they pin exclusively. */
  trusted?: Record<string, readonly string[]> | ((host: ResolvedHost) => readonly string[] | undefined);
  /** Agent socket; default IdentityAgent or SSH_AUTH_SOCK; null disables the agent. */
  agentSocket?: string | null;
  /** Warnings (an unknown host key accepted because StrictHostKeyChecking says so). */
  warn?: (message: string) => void;
  /** The connect timeout for hosts whose ssh config sets no ConnectTimeout (nsh.conf ssh-connect-timeout). */
  connectTimeout?: HostDefaults;
  /** Channels per connection before another is opened (OpenSSH's MaxSessions default is 10). */
  maxChannelsPerConnection?: number;
  relay?: RelayOpen; // the machine's ssh relay (ssh-relay.ts): connectUnix asks it first
}

interface Conn extends ChannelConn {
  client: Client;
  ready: Promise<void>;
  capacity: number;
  dead: boolean;
  /** The host key this connection verified (for a second transport to the same host). */
  hostKey?: { type: string; blob: Buffer };
}

let ssh2: Promise<Ssh2> | undefined;
/**
 * ssh2 is loaded by the first connection (~23 ms of CPU per process): a hook whose channels all go through the
 * machine's ssh relay never loads it.
 */
const loadSsh2 = (): Promise<Ssh2> => (ssh2 ??= import("ssh2"));

const hostLabel = (h: ResolvedHost) => {
  const addr = formatDestination({ user: h.user, host: h.hostname, port: h.port });
  return h.alias === h.hostname ? addr : `${h.alias} (${addr})`;
};

/** Single-quotes for sh when the word is not plainly safe. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_\-.,:/@%+=]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export class SshPool {
  readonly config: SshConfig;
  /** Connections opened so far (tests check reuse). */
  connectionsOpened = 0;
  private readonly conns = new Map<string, Conn[]>();
  private closed = false;

  constructor(private readonly opts: SshPoolOptions = {}) {
    this.config = opts.config ?? loadSshConfig({ file: opts.configFile });
  }

  /** Runs `command` on the first destination that accepts it; failover in the given order. */
  async exec(destinations: readonly Destination[] | readonly string[], command: string): Promise<SshDuplex> {
    const dests = destinations.map((d) => (typeof d === "string" ? parseDestinations(d) : [d])).flat();
    if (dests.length === 0) throw new SshError(`no ssh host given to run ${command}`);
    const failures: string[] = [];
    for (const dest of dests) {
      let host: ResolvedHost;
      try {
        host = this.resolve(dest);
      } catch (e) {
        failures.push(`${dest.text}: ${(e as Error).message}`);
        continue;
      }
      try {
        return await this.execOn(host, command);
      } catch (e) {
        failures.push(`${hostLabel(host)}: ${(e as Error).message}`);
      }
    }
    const head = dests.length === 1
      ? `cannot run \`${command}\` over ssh on`
      : `cannot run \`${command}\` on any of ${dests.length} ssh hosts (each was tried in order):`;
    const bullets = failures.map((f) => `  - ${f}`).join("\n");
    const list = dests.length === 1 ? `${head} ${failures[0]}` : `${head}\n${bullets}`;
    throw new SshError(list, failures);
  }

  /**
   * A stream to a unix socket on the host (OpenSSH's direct-streamlocal: no process runs there).
   * Fails when the socket is not there (yet) or sshd forbids forwarding: callers fall back to a command.
   */
  async connectUnix(dest: Destination, socketPath: string): Promise<SshDuplex> {
    const relayed = await this.opts.relay?.(dest, socketPath);
    if (relayed) return relayed;
    const conn = this.connection(this.resolve(dest));
    conn.channels++;
    try {
      await conn.ready;
      const channel = await new Promise<ClientChannel>((resolve, reject) => {
        conn.client.openssh_forwardOutStreamLocal(socketPath, (err, ch) => (err ? reject(err) : resolve(ch)));
      });
      // No exit status here: the stream is done when the peer's EOF is seen, even with nobody
      // reading (read(0) consumes nothing, it only lets the stream end and ssh2 say "close").
      channel.on("readable", () => void (channel.readableLength === 0 && channel.read(0)));
      return channelDuplex(conn, channel, `unix socket ${socketPath}`);
    } catch (e) {
      conn.channels--;
      throw new SshError(`cannot connect to ${socketPath} on ${conn.label}: ${(e as Error).message}`);
    }
  }

  /** Runs a command to completion; exit 127 throws like a Duplex read ("<program> not found"). */
  async runCommand(
    dest: Destination | string, command: string, stdin?: Uint8Array | string,
  ): Promise<{ code: number | null; signal?: string; stdout: string; stderr: string }> {
    const d = await this.exec([dest] as Destination[] | string[], command);
    try {
      if (stdin !== undefined) await d.write(typeof stdin === "string" ? new TextEncoder().encode(stdin) : stdin);
      await d.end();
      const chunks: Uint8Array[] = [];
      for (;;) {
        const r = await (d.stdout as { read(): Promise<{ done: boolean; value?: Uint8Array }> }).read();
        if (r.done || !r.value) break;
        chunks.push(r.value);
      }
      const status = await d.exited;
      const stdout = Buffer.concat(chunks).toString("utf8");
      return { code: status.code, signal: status.signal, stdout, stderr: d.stderrTail() };
    } finally {
      d.close();
    }
  }

  /** What a second transport to the host (OpenSSH's ssh, for bulk data) needs: settings, verified key. */
  async verifiedHost(
    dest: Destination,
  ): Promise<{ host: ResolvedHost; keyType: string; key: Buffer; configFile?: string }> {
    const host = this.resolve(dest);
    const conn = this.connection(host);
    await conn.ready;
    if (!conn.hostKey) throw new SshError(`${conn.label}: no verified host key`);
    return { host, keyType: conn.hostKey.type, key: conn.hostKey.blob, configFile: this.opts.configFile };
  }

  /** Ends every connection (channels on them fail). */
  close(): void {
    this.closed = true;
    for (const list of this.conns.values()) for (const c of list) c.client?.end();
    this.conns.clear();
  }

  private resolve(dest: Destination): ResolvedHost {
    return resolveHost(this.config, dest, this.opts.connectTimeout);
  }

  private async execOn(host: ResolvedHost, command: string): Promise<SshDuplex> {
    for (let attempt = 0; ; attempt++) {
      const conn = this.connection(host);
      conn.channels++;
      let connected = false;
      try {
        await conn.ready;
        connected = true;
        const channel = await new Promise<ClientChannel>((resolve, reject) => {
          conn.client.exec(command, (err, ch) => (err ? reject(err) : resolve(ch)));
        });
        return channelDuplex(conn, channel, command);
      } catch (e) {
        conn.channels--;
        if (!connected) throw e; // already explained by connect()
        // The server refused another session on this connection (MaxSessions): it is full.
        const full = !conn.dead && /open fail/i.test((e as Error).message);
        if (full) conn.capacity = Math.max(1, conn.channels);
        // A pooled connection may have died since its last use, or be full: one more try on a new one.
        if (attempt === 0 && (conn.dead || full)) continue;
        throw new SshError(`cannot start the command: ${(e as Error).message}`);
      }
    }
  }

  private connection(host: ResolvedHost): Conn {
    if (this.closed) throw new SshError("the ssh connection pool is closed");
    const key = `${host.alias}|${host.user}@${host.hostname}:${host.port}`;
    const list = (this.conns.get(key) ?? []).filter((c) => !c.dead);
    this.conns.set(key, list);
    const limit = this.opts.maxChannelsPerConnection ?? 10;
    const free = list.find((c) => c.channels < Math.min(c.capacity, limit));
    if (free) return free;
    const conn = this.connect(host);
    list.push(conn);
    conn.ready.catch(() => {
      const l = this.conns.get(key);
      if (l) this.conns.set(key, l.filter((c) => c !== conn));
    });
    return conn;
  }

  private connect(host: ResolvedHost): Conn {
    this.connectionsOpened++;
    const conn: Conn = {
      label: hostLabel(host), client: undefined as unknown as Client, ready: Promise.resolve(),
      channels: 0, capacity: Infinity, live: new Set(), dead: false,
    };
    conn.ready = loadSsh2().then((lib) => {
      if (this.closed) throw new SshError("the ssh connection pool is closed");
      return this.handshake(lib, conn, host);
    });
    conn.ready.catch(() => {});
    return conn;
  }

  private handshake(lib: Ssh2, conn: Conn, host: ResolvedHost): Promise<void> {
    const client = new lib.Client();
    conn.client = client;
    const notes: string[] = [];
    const tried: string[] = [];
    let serverMethods: AuthenticationType[] | null = null;
    let hostKeyProblem: string | undefined;
    let isReady = false;

    const pins = this.pinsFor(host);
    const known = this.readKnownHosts(host);
    const lookupHost = host.hostKeyAlias ?? host.hostname;
    const lookupPort = host.hostKeyAlias !== undefined ? 22 : host.port;
    const keys = loadIdentities(lib, host.identityFiles, notes);
    const agentPath = this.opts.agentSocket === null || host.identityAgent === "none"
      ? undefined
      : this.opts.agentSocket ?? host.identityAgent ?? this.config.local.env.SSH_AUTH_SOCK;
    const methods: (
      | { type: "agent"; username: string; agent: OpenSSHAgent }
      | { type: "publickey"; username: string; key: ParsedKey; label: string }
    )[] = [];
    // IdentitiesOnly: only agent keys that belong to a configured identity (its key or its .pub file).
    const only = host.identitiesOnly
      ? [...keys.map((k) => k.key.getPublicSSH()), ...publicKeysOf(host.identityFiles)]
      : undefined;
    const agent = agentPath && recordingAgent(lib, agentPath, only, tried);
    if (agent) methods.push({ type: "agent", username: host.user, agent });
    for (const k of keys) methods.push({ type: "publickey", username: host.user, key: k.key, label: k.label });

    return new Promise<void>((resolve, reject) => {
      const fail = (err: SshErr) => {
        if (conn.dead) return;
        conn.dead = true;
        if (!isReady) {
          const state = { hostKeyProblem, tried, notes, serverMethods, agentPath };
          reject(new SshError(explainConnectError(err, host, state)));
          client.end();
          return;
        }
        // Every channel still open learns which host dropped, instead of seeing a clean EOF.
        const lost = new SshError(`ssh connection to ${conn.label} lost: ${err.message}`);
        for (const f of conn.live) f(lost);
      };
      client.on("ready", () => {
        isReady = true;
        resolve();
      });
      client.on("error", (err: SshErr) => {
        // Agent trouble and a key that cannot sign are not fatal: ssh2 goes on with the next method.
        if (err.level === "agent") return void notes.push(`ssh-agent ${agentPath}: ${err.message}`);
        if (!isReady && /^Error while signing/.test(err.message)) return void notes.push(err.message);
        fail(err);
      });
      const closed = () => new Error(isReady ? "connection closed" : "connection closed during the SSH handshake");
      client.on("close", () => fail(Object.assign(closed(), { level: "closed" })));
      client.connect({
        host: host.hostname,
        port: host.port,
        username: host.user,
        readyTimeout: host.connectTimeoutMs,
        keepaliveInterval: host.keepaliveIntervalMs,
        keepaliveCountMax: host.keepaliveCountMax,
        algorithms: {
          serverHostKey: { prepend: preferredHostKeyAlgorithms(known, lookupHost, lookupPort, pins) } as never,
        },
        hostVerifier: (key: Buffer): boolean => {
          const keyType = keyTypeOfBlob(key) ?? "unknown";
          const res = checkHostKey(known, lookupHost, lookupPort, keyType, key, pins);
          conn.hostKey = { type: keyType, blob: key };
          if (res.ok) return true;
          if (res.reason === "unknown-host" && host.strictHostKeyChecking !== "yes") {
            this.acceptNew(host, lookupHost, lookupPort, keyType, key);
            return true;
          }
          conn.hostKey = undefined;
          hostKeyProblem = res.message;
          return false;
        },
        authHandler: (authsLeft: AuthenticationType[] | null, _partial: boolean, next: NextAuthHandler) => {
          if (authsLeft) serverMethods = authsLeft;
          // Skip what the server does not offer; ssh2 ends with "All configured authentication methods failed".
          if (authsLeft && !authsLeft.includes("publickey")) return next(false as never);
          const m = methods.shift();
          if (!m) return next(false as never);
          if (m.type === "publickey") tried.push(m.label);
          next(m.type === "agent"
            ? { type: "agent", username: m.username, agent: m.agent }
            : { type: "publickey", username: m.username, key: m.key });
        },
      });
      // ssh2 keeps its socket in a private field; it exists from connect() on and is written only
      // once the TCP connection is up, so patching it here catches every write.
      const sock = (client as unknown as { _sock?: { write(d: Uint8Array | string, ...r: unknown[]): boolean } })._sock;
      if (sock) coalesceWrites(sock);
    });
  }

  private pinsFor(host: ResolvedHost): string[] {
    const t = this.opts.trusted;
    const pins = (typeof t === "function" ? t(host) : t?.[host.alias] ?? t?.[host.hostname]) ?? [];
    for (const p of pins) parsePublicKey(p); // a malformed pin: a configuration error, this host's failure
    return [...pins];
  }

  private readKnownHosts(host: ResolvedHost): KnownHostEntry[] {
    return host.knownHostsFiles.flatMap((f) => {
      try {
        return parseKnownHosts(fs.readFileSync(f, "utf8"), f).entries;
      } catch {
        return []; // missing files are normal (no global file, fresh user)
      }
    });
  }

  private acceptNew(host: ResolvedHost, name: string, port: number, keyType: string, key: Buffer): void {
    const what = `${keyTypeLabel(keyType)} key ${fingerprintSha256(key)} of ${hostLabel(host)}`;
    const file = host.userKnownHostsFiles[0];
    if (host.strictHostKeyChecking === "accept-new" && file) {
      try {
        fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
        fs.appendFileSync(file, `${knownHostsLine(name, port, keyType, key)}\n`);
        return this.warn(`added the unknown host key ${what} to ${file} (StrictHostKeyChecking accept-new)`);
      } catch (e) {
        const notAdded = `could not add it to ${file}: ${(e as Error).message}`;
        return this.warn(`accepted the unknown host key ${what} (StrictHostKeyChecking accept-new) but ${notAdded}`);
      }
    }
    this.warn(`accepting the unknown host key ${what} without verification because StrictHostKeyChecking is "no"`);
  }

  private warn(message: string): void {
    (this.opts.warn ?? ((m: string) => process.stderr.write(`nsh: warning: ${m}\n`)))(message);
  }
}
