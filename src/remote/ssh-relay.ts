// A hook's side of the machine's ssh relay (ssh-relay-server.ts): a stream to a unix socket on a host
// through the relay's shared ssh connections, like OpenSSH's ControlMaster, so it costs one local
// round trip instead of an ssh handshake per hook. The relay is started on first use (detached, in
// its own session: Nix ≤ 2.34 SIGKILLs the hook's process group) and leaves when idle. Anything
// wrong with the relay itself gives undefined, and the caller uses its own connection; only the
// relay's "cannot open that socket" is an error (SshError), as it would be on a direct connection.
import fs from "node:fs";
import path from "node:path";
import type { Socket } from "bun";
import type { Destination } from "./destination.ts";
import { type RelayOpen, SshError, type SshDuplex } from "./ssh-channel.ts";
import type { SshSettings } from "./ssh-options.ts";
import {
  encodeRelayRequest, MAX_SOCKET_PATH, parseRelayReply, type RelayReply, relayDirProblem, relayKey, relaySettings,
} from "./ssh-relay-protocol.ts";
import { selfCommand } from "../util/self.ts";

export type { RelayOpen };

export interface SshRelayOptions {
  /** The relay's command line (default: this program's `__ssh-relay`); the socket path is appended. */
  command?: string[];
  /** Warnings the relay's pool gave while connecting (an unknown host key accepted). */
  warn?: (message: string) => void;
  /** Why the relay is not used (debug). */
  debug?: (message: string) => void;
}

/** How long a started relay has to listen. */
const START_WAIT_MS = 3000;
/** Unread bytes from the relay before it is no longer read (it then stops reading the channel). */
const HIGH_WATER = 1 << 20;
/** The environment the relay's ssh sees: what resolves hosts and keys, nothing else (no scheduler secrets). */
const RELAY_ENV = ["HOME", "USER", "LOGNAME", "SSH_AUTH_SOCK", "PATH"];

export function sshRelay(
  stateDir: string, settings: SshSettings, env: Record<string, string | undefined>, idleSec: number,
  opts: SshRelayOptions = {},
): RelayOpen {
  settings = relaySettings(settings);
  const command = opts.command ?? [...selfCommand(), "__ssh-relay"];
  const debug = opts.debug ?? (() => {});
  const uid = process.getuid?.() ?? -1;
  const key = relayKey(settings, {
    uid, home: env.HOME, user: env.USER ?? env.LOGNAME, authSock: env.SSH_AUTH_SOCK, executable: programOf(command),
  });
  const dir = path.join(stateDir, "ssh-relay");
  const sock = path.join(dir, `${key}.sock`);
  let started: Promise<boolean> | undefined;

  const usable = (): boolean => {
    const problem = ((): string | undefined => {
      if (sock.length > MAX_SOCKET_PATH) return `its socket path is too long: ${sock}`;
      try {
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
        const st = fs.lstatSync(dir);
        const bad = relayDirProblem({ isDirectory: st.isDirectory(), uid: st.uid, mode: st.mode }, uid);
        return bad && `${dir} ${bad}`;
      } catch (e) {
        return `${dir}: ${(e as Error).message}`;
      }
    })();
    if (problem) debug(`ssh relay not used: ${problem}`);
    return problem === undefined;
  };

  const start = (): Promise<boolean> => {
    try {
      const relayEnv = Object.fromEntries(RELAY_ENV.flatMap((k) => (env[k] === undefined ? [] : [[k, env[k]!]])));
      const proc = Bun.spawn([...command, sock], {
        detached: true, env: relayEnv, stdin: "pipe", stdout: "ignore", stderr: "ignore",
      });
      proc.stdin.write(JSON.stringify({ settings, idleSec }));
      void Promise.resolve(proc.stdin.end()).catch(() => {});
      proc.unref();
      return Promise.resolve(true);
    } catch (e) {
      debug(`ssh relay: cannot start it: ${(e as Error).message}`);
      return Promise.resolve(false);
    }
  };

  return async (dest, socketPath) => {
    if (!usable()) return undefined;
    let stream = await RelayStream.connect(sock);
    if (!stream) {
      started ??= start();
      if (!(await started)) return undefined;
      for (const until = Date.now() + START_WAIT_MS; !stream && Date.now() < until;) {
        await Bun.sleep(25);
        stream = await RelayStream.connect(sock);
      }
      started = undefined; // a later channel may find this relay gone and start another
      if (!stream) return void debug(`ssh relay: nothing listens on ${sock}`);
    }
    const label = `${dest.text} via the ssh relay`;
    await stream.send(encodeRelayRequest({ dest: dest.text, socketPath }));
    const waitMs = Math.max(60, 2 * settings["ssh-connect-timeout"]) * 1000 + 10_000;
    const line = await stream.replyLine(waitMs);
    let reply: RelayReply;
    try {
      if (line === undefined) throw new Error("closed before it answered");
      reply = parseRelayReply(line);
    } catch (e) {
      stream.close();
      return void debug(`ssh relay ${sock}: ${(e as Error).message}`);
    }
    for (const w of reply.warnings) opts.warn?.(w);
    if (!reply.ok) {
      stream.close();
      throw new SshError(reply.error);
    }
    return stream.duplex(label, `unix socket ${socketPath}`);
  };
}

/** The relay's program and its version on disk: an nsh upgraded in place does not ask the old relay. */
function programOf(command: readonly string[]): string {
  try {
    const st = fs.statSync(command[0]!);
    return `${command.join(" ")} ${st.size} ${st.mtimeMs}`;
  } catch {
    return command.join(" ");
  }
}

/** The relay connection: the reply line first, then the stream's bytes. */
class RelayStream {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private pending: Uint8Array[] = [];
  private head = "";
  private gotReply = false;
  private peerEnded = false;
  private weEnded = false;
  private closed = false;
  private waiters: (() => void)[] = [];
  private readonly exit = Promise.withResolvers<{ code: number | null }>();
  private sock!: Socket<undefined>;

  static async connect(unix: string): Promise<RelayStream | undefined> {
    const s = new RelayStream();
    try {
      s.sock = await Bun.connect({
        unix,
        allowHalfOpen: true,
        socket: {
          data: (_sock, bytes) => s.onData(bytes),
          drain: () => s.flush(),
          end: () => s.changed(() => (s.peerEnded = true)),
          close: () => s.changed(() => (s.closed = true)),
          error: () => s.changed(() => (s.closed = true)),
        },
      });
    } catch {
      return undefined; // nothing listens (ENOENT, ECONNREFUSED)
    }
    return s;
  }

  private changed(f?: () => void): void {
    f?.();
    if (this.closed) this.exit.resolve({ code: null });
    const w = this.waiters;
    this.waiters = [];
    for (const r of w) r();
  }

  private wait(): Promise<void> {
    return new Promise((r) => this.waiters.push(r));
  }

  private onData(bytes: Uint8Array): void {
    let rest = bytes;
    if (!this.gotReply) {
      const nl = bytes.indexOf(10);
      this.head += new TextDecoder().decode(nl < 0 ? bytes : bytes.subarray(0, nl));
      if (nl < 0) return void (this.head.length > 65536 && this.sock.end());
      this.gotReply = true;
      rest = bytes.subarray(nl + 1);
    }
    if (rest.byteLength > 0) {
      this.chunks.push(new Uint8Array(rest)); // Bun reuses its buffer
      this.buffered += rest.byteLength;
      if (this.buffered > HIGH_WATER) this.sock.pause();
    }
    this.changed();
  }

  private flush(): void {
    while (this.pending.length > 0) {
      const head = this.pending[0]!;
      const n = this.sock.write(head);
      if (n <= 0) break;
      if (n < head.byteLength) {
        this.pending[0] = head.subarray(n);
        break;
      }
      this.pending.shift();
    }
    this.changed();
  }

  async send(bytes: Uint8Array | string): Promise<void> {
    if (this.closed) throw new SshError("the ssh relay closed the connection");
    this.pending.push(typeof bytes === "string" ? new TextEncoder().encode(bytes) : new Uint8Array(bytes));
    this.flush();
    while (this.pending.length > 0) {
      if (this.closed) throw new SshError("the ssh relay closed the connection");
      await this.wait();
    }
  }

  async replyLine(timeoutMs: number): Promise<string | undefined> {
    const timer = setTimeout(() => this.changed(() => (this.closed = true)), timeoutMs);
    while (!this.gotReply && !this.closed && !this.peerEnded) await this.wait();
    clearTimeout(timer);
    return this.gotReply ? this.head : undefined;
  }

  close(): void {
    try {
      this.sock.end();
    } catch {} // closed already
    this.changed(() => (this.closed = true));
  }

  duplex(host: string, what: string): SshDuplex {
    const describe = `${host}: ${what}`;
    return {
      describe,
      host,
      stdout: {
        read: async (): Promise<{ done: boolean; value?: Uint8Array }> => {
          for (;;) {
            const value = this.chunks.shift();
            if (value) {
              this.buffered -= value.byteLength;
              if (this.buffered <= HIGH_WATER && !this.closed) this.sock.resume();
              return { done: false, value };
            }
            if (this.peerEnded || this.closed) return { done: true };
            await this.wait();
          }
        },
      },
      write: async (bytes) => {
        if (this.weEnded) throw new SshError(`${describe}: cannot write: stdin was closed`);
        if (this.closed) throw new SshError(`${describe}: cannot write: the stream was closed`);
        await this.send(bytes);
      },
      end: async () => {
        if (this.weEnded || this.closed) return;
        this.weEnded = true;
        while (this.pending.length > 0 && !this.closed) await this.wait();
        if (!this.closed) this.sock.shutdown();
      },
      stderrTail: () => "",
      onStderrLine: () => {},
      exited: this.exit.promise,
      close: () => this.close(),
    };
  }
}
