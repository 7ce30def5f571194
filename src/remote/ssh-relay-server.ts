// `nsh __ssh-relay SOCKET`: the machine's ssh relay for one user and one set of ssh settings. It holds
// an SshPool and serves streams to unix sockets on remote hosts (OpenSSH's direct-streamlocal) to
// local hooks over SOCKET, so a hook's channel costs one local round trip instead of an ssh handshake.
// Settings come on stdin (JSON, then EOF; never argv). One relay per socket: an exclusive flock on
// SOCKET.lock. Bytes are passed with backpressure both ways and half-closes are passed on (client
// shutdown → channel EOF; channel EOF → client shutdown), so nothing after a half-close is lost.
// Bun's sockets need allowHalfOpen on both ends for that (Bun 1.4.5, tried): without it a peer's FIN
// closes the socket (a write after it returns -1) and end() closes both ways; with it, shutdown()
// half-closes and bytes written after the peer's FIN arrive.
// It leaves when no client was connected for its idle time, or soon after SOCKET is removed or
// replaced. It never prints (stdout and stderr are ignored by whoever starts it).
import fs from "node:fs";
import type { Socket } from "bun";
import { flock, LOCK_EX, LOCK_NB } from "../sys/libc.ts";
import { parseDestination } from "./destination.ts";
import { SshPool, type SshDuplex } from "./ssh.ts";
import { type SshSettings, sshPoolOptions } from "./ssh-options.ts";
import { encodeRelayReply, parseRelayRequest, RELAY_MAX_LINE } from "./ssh-relay-protocol.ts";

export interface RelayOrder {
  settings: SshSettings;
  idleSec: number;
}

/** How long a client may take to send its request line. */
const REQUEST_TIMEOUT_MS = 30_000;
/** Bytes queued toward one side before the other side is no longer read. */
const HIGH_WATER = 1 << 20;
const LOCK_WAIT_MS = 2000;

interface Client {
  line: string;
  decoder: TextDecoder;
  /** Bytes that came with or after the request line, before the channel was open. */
  early: Uint8Array[];
  channel?: SshDuplex;
  /** Toward the client: bytes Bun did not take yet. */
  out: Uint8Array[];
  outBytes: number;
  /** Close the client's side once `out` is written (the channel reached EOF). */
  shutdownAfterOut: boolean;
  /** Toward the channel: writes in flight. */
  inBytes: number;
  inChain: Promise<void>;
  clientEnded: boolean;
  closed: boolean;
  timer?: ReturnType<typeof setTimeout>;
  wakeOut?: () => void;
}

export async function runSshRelay(args: string[]): Promise<number> {
  const socketPath = args[0];
  if (!socketPath) return 2;
  let order: RelayOrder;
  try {
    order = JSON.parse(await Bun.stdin.text()) as RelayOrder;
  } catch {
    return 2;
  }
  // One stream's failure must never end the relay, and the relay has nowhere to print.
  process.on("unhandledRejection", () => {});
  const lockFd = fs.openSync(`${socketPath}.lock`, fs.constants.O_CREAT | fs.constants.O_RDWR, 0o600);
  // A relay that is just leaving may still hold the lock: wait a little before deciding another serves.
  const deadline = Date.now() + LOCK_WAIT_MS;
  while (!flock(lockFd, LOCK_EX | LOCK_NB)) {
    if (Date.now() > deadline) return 0;
    await Bun.sleep(50);
  }
  const warnings = new Set<string[]>();
  let pool: SshPool;
  try {
    pool = new SshPool(sshPoolOptions(order.settings, { warn: (m) => { for (const w of warnings) w.push(m); } }));
  } catch {
    return 1;
  }
  fs.rmSync(socketPath, { force: true }); // stale: its relay is gone (we hold the lock)
  const clients = new Set<Socket<Client>>();
  let idleSince = Date.now();

  const flushOut = (s: Socket<Client>) => {
    const c = s.data;
    while (c.out.length > 0) {
      const head = c.out[0]!;
      const n = s.write(head);
      if (n < 0) return;
      c.outBytes -= Math.max(0, n);
      if (n < head.byteLength) {
        c.out[0] = head.subarray(n);
        return;
      }
      c.out.shift();
    }
    if (c.outBytes <= HIGH_WATER) c.wakeOut?.();
    // Both directions done: close; else pass the channel's EOF on and keep taking the client's bytes.
    if (c.shutdownAfterOut) void (c.clientEnded ? s.end() : s.shutdown());
  };

  const toChannel = (s: Socket<Client>, bytes: Uint8Array) => {
    const c = s.data;
    const ch = c.channel!;
    c.inBytes += bytes.byteLength;
    if (c.inBytes > HIGH_WATER) s.pause();
    c.inChain = c.inChain.then(() => ch.write(bytes)).then(() => {
      c.inBytes -= bytes.byteLength;
      if (c.inBytes <= HIGH_WATER && !c.closed) s.resume();
    });
    c.inChain.catch(() => s.end());
  };

  // The channel's bytes to the client, read only as fast as the client takes them.
  const pump = async (s: Socket<Client>) => {
    const c = s.data;
    const reader = c.channel!.stdout as { read(): Promise<{ done: boolean; value?: Uint8Array }> };
    try {
      for (;;) {
        while (c.outBytes > HIGH_WATER && !c.closed) await new Promise<void>((r) => (c.wakeOut = r));
        if (c.closed) return;
        const r = await reader.read();
        if (r.done || !r.value) break;
        c.out.push(r.value);
        c.outBytes += r.value.byteLength;
        flushOut(s);
      }
      c.shutdownAfterOut = true;
      flushOut(s);
    } catch {
      s.end(); // the connection to the host dropped: the client sees its stream end
    }
  };

  const open = async (s: Socket<Client>, line: string) => {
    const c = s.data;
    const mine: string[] = [];
    warnings.add(mine);
    try {
      const req = parseRelayRequest(line);
      c.channel = await pool.connectUnix(parseDestination(req.dest), req.socketPath);
    } catch (e) {
      warnings.delete(mine);
      s.write(encodeRelayReply({ ok: false, error: (e as Error).message, warnings: mine }));
      s.end();
      return;
    }
    warnings.delete(mine);
    if (c.closed) return void c.channel.close();
    c.out.push(new TextEncoder().encode(encodeRelayReply({ ok: true, warnings: mine })));
    c.outBytes += c.out[0]!.byteLength;
    flushOut(s);
    c.inBytes = 0;
    for (const b of c.early) toChannel(s, b);
    c.early = [];
    s.resume();
    if (c.clientEnded) void c.inChain.then(() => c.channel?.end()).catch(() => {});
    void pump(s);
  };

  const listen = () => Bun.listen<Client>({
    unix: socketPath,
    allowHalfOpen: true,
    socket: {
      open(s) {
        s.data = {
          line: "", decoder: new TextDecoder(), early: [], out: [], outBytes: 0, shutdownAfterOut: false, inBytes: 0,
          inChain: Promise.resolve(), clientEnded: false, closed: false,
        };
        clients.add(s);
        s.data.timer = setTimeout(() => s.data.line !== "\0" && s.end(), REQUEST_TIMEOUT_MS);
      },
      data(s, bytes) {
        const c = s.data;
        if (c.channel) return toChannel(s, bytes);
        if (c.line === "\0") {
          c.early.push(new Uint8Array(bytes));
          c.inBytes += bytes.byteLength;
          return void (c.inBytes > HIGH_WATER && s.pause());
        }
        const nl = bytes.indexOf(10);
        c.line += c.decoder.decode(nl < 0 ? bytes : bytes.subarray(0, nl), { stream: nl < 0 });
        if (c.line.length > RELAY_MAX_LINE + 1) {
          s.write(encodeRelayReply({ ok: false, error: `request longer than ${RELAY_MAX_LINE} bytes`, warnings: [] }));
          return void s.end();
        }
        if (nl < 0) return;
        const line = c.line;
        c.line = "\0"; // the request is in: what follows is the stream's
        clearTimeout(c.timer);
        if (nl + 1 < bytes.byteLength) {
          c.early.push(new Uint8Array(bytes.subarray(nl + 1)));
          c.inBytes += bytes.byteLength - nl - 1;
        }
        void open(s, line);
      },
      drain(s) {
        flushOut(s);
      },
      end(s) {
        const c = s.data;
        c.clientEnded = true;
        if (c.channel) void c.inChain.then(() => c.channel?.end()).catch(() => {});
        else if (c.line !== "\0") s.end();
        if (c.shutdownAfterOut && c.out.length === 0) s.end();
      },
      close(s) {
        const c = s.data;
        c.closed = true;
        clearTimeout(c.timer);
        c.wakeOut?.();
        // The client's last bytes go out before the channel closes.
        void c.inChain.catch(() => {}).finally(() => c.channel?.close());
        clients.delete(s);
        if (clients.size === 0) idleSince = Date.now();
      },
      error() {},
    },
  });
  let server: ReturnType<typeof listen>;
  try {
    server = listen();
  } catch {
    pool.close();
    return 1;
  }
  const mine = fs.statSync(socketPath);
  const ours = () => {
    try {
      const st = fs.statSync(socketPath);
      return st.ino === mine.ino && st.dev === mine.dev;
    } catch {
      return false;
    }
  };
  // Leave when idle, or when the socket is no longer ours (removed, or another relay's).
  const idleMs = (Number(order.idleSec) >= 1 ? Number(order.idleSec) : 1) * 1000;
  for (;;) {
    await Bun.sleep(Math.min(1000, idleMs / 2));
    if (!ours()) break;
    if (clients.size === 0 && Date.now() - idleSince >= idleMs) break;
  }
  if (ours()) fs.rmSync(socketPath, { force: true });
  server.stop(true);
  pool.close();
  return 0;
}
