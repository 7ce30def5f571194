// The daemon proxy: relays bytes between nix and its store, unparsed, with a bounded buffer per
// direction. While nix is stopped it reads nothing, so the daemon→nix queue fills to the bound and
// then we stop reading the daemon (real backpressure) instead of growing or dropping the connection.
import type { Socket, Subprocess } from "bun";
import type { Upstream } from "./store.ts";

/** One end of a relay. */
interface End {
  write(data: Uint8Array): number;
  pause(): void;
  resume(): void;
  close(): void;
}

export interface ProxyStats {
  connections: number;
  open: number;
  /** Most bytes ever queued in one direction of one connection. */
  peakQueued: number;
  /** Bytes relayed from the store to nix. */
  bytesToClient: number;
}

/** A queue towards one end; pauses the source above the bound, resumes it once drained. */
class Direction {
  private queue: Uint8Array[] = [];
  private queued = 0;
  private pausedSource = false;
  closing = false;

  constructor(
    private readonly sink: () => End | undefined,
    private readonly source: () => End | undefined,
    private readonly bound: number,
    private readonly stats: ProxyStats,
    /** Told when this direction fills up (true) and when it has drained again (false). */
    private readonly onPressure: (full: boolean) => void = () => {},
  ) {}

  push(data: Uint8Array): void {
    const sink = this.sink();
    let rest = data;
    if (this.queued === 0 && sink) {
      const n = sink.write(data);
      if (n === data.length) return;
      rest = data.subarray(Math.max(0, n));
    }
    // The read buffer may be reused by the runtime: keep our own copy.
    this.queue.push(Uint8Array.from(rest));
    this.queued += rest.length;
    if (this.queued > this.stats.peakQueued) this.stats.peakQueued = this.queued;
    if (this.queued > this.bound && !this.pausedSource) {
      this.pausedSource = true;
      this.source()?.pause();
      this.onPressure(true);
    }
  }

  /** Called when the sink can take more. Returns true once everything queued is written. */
  drain(): boolean {
    const sink = this.sink();
    if (!sink) return false;
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      const n = sink.write(head);
      if (n <= 0) break;
      this.queued -= n;
      if (n < head.length) {
        this.queue[0] = head.subarray(n);
        break;
      }
      this.queue.shift();
    }
    if (this.pausedSource && this.queued <= this.bound / 2) {
      this.pausedSource = false;
      this.source()?.resume();
      this.onPressure(false);
    }
    if (this.queued === 0 && this.closing) sink.close();
    return this.queued === 0;
  }

  get empty(): boolean {
    return this.queued === 0;
  }
}

function socketEnd(s: Socket<unknown>): End {
  return {
    write: (d) => s.write(d),
    pause: () => s.pause(),
    resume: () => s.resume(),
    close: () => s.end(),
  };
}

interface Conn {
  toClient: Direction;
  toUpstream: Direction;
  upstream?: End;
  closeUpstream?: () => void;
  client: Socket<Conn>;
}

export interface Proxy {
  stats: ProxyStats;
  stop(): void;
}

/**
 * `onPressure(true)` says some connection's daemon→nix queue is full, so the daemon now waits for
 * nix; a stopped nix must then run to drain it, or its builds would stall behind their own logs.
 */
export function startProxy(listenPath: string, upstream: Upstream, bound: number, daemonProgram = "nix-daemon", onPressure: (full: boolean) => void = () => {}): Proxy {
  const stats: ProxyStats = { connections: 0, open: 0, peakQueued: 0, bytesToClient: 0 };
  let full = 0;
  const pressure = (isFull: boolean) => {
    const was = full;
    full += isFull ? 1 : -1;
    if ((was === 0) !== (full === 0)) onPressure(full > 0);
  };
  if (upstream.kind === "unsupported") throw new Error(upstream.reason);

  const server = Bun.listen<Conn>({
    unix: listenPath,
    socket: {
      open(client) {
        stats.connections++;
        stats.open++;
        const conn: Conn = {
          client,
          toClient: new Direction(() => socketEnd(client), () => conn.upstream, bound, stats, pressure),
          toUpstream: new Direction(() => conn.upstream, () => socketEnd(client), bound, stats),
        };
        client.data = conn;
        // Until the upstream is connected, client bytes queue up (and pause the client if many).
        if (upstream.kind === "socket") connectSocket(conn, upstream.path);
        else spawnStdio(conn, upstream.store, daemonProgram);
      },
      data(client, data) {
        client.data.toUpstream.push(data);
      },
      drain(client) {
        client.data.toClient.drain();
      },
      close(client) {
        stats.open--;
        // A half-close is not enough: the daemon only cancels builds on HUP or EOF (§3).
        client.data.closeUpstream?.();
        client.data.toUpstream.closing = true;
      },
      error(client) {
        client.data.closeUpstream?.();
      },
    },
  });

  function connectSocket(conn: Conn, path: string): void {
    Bun.connect<undefined>({
      unix: path,
      socket: {
        open(up) {
          conn.upstream = socketEnd(up);
          conn.closeUpstream = () => up.terminate();
          conn.toUpstream.drain();
        },
        data(_up, data) {
          stats.bytesToClient += data.length;
          conn.toClient.push(data);
        },
        drain() {
          conn.toUpstream.drain();
        },
        close() {
          finishToClient(conn);
        },
        error() {
          finishToClient(conn);
        },
      },
    }).catch((e: Error) => {
      process.stderr.write(`nix-sigstop: cannot connect to the Nix daemon at ${path}: ${e.message}\n`);
      conn.client.end();
    });
  }

  function spawnStdio(conn: Conn, store: string, program: string): void {
    let proc: Subprocess<"pipe", "pipe", "inherit">;
    try {
      // NIX_REMOTE as well as --option: a daemon whose store resolved to `auto` could loop back (§3).
      proc = Bun.spawn([program, "--stdio", "--option", "store", store], {
        stdin: "pipe",
        stdout: "pipe",
        stderr: "inherit",
        env: { ...process.env, NIX_REMOTE: store },
      });
    } catch (e) {
      process.stderr.write(`nix-sigstop: cannot start '${program} --stdio': ${(e as Error).message}\n`);
      conn.client.end();
      return;
    }
    const reader = proc.stdout.getReader();
    let paused: PromiseWithResolvers<void> | undefined;
    let pendingWrites = 0;
    conn.upstream = {
      write(d) {
        // The FileSink takes everything; above the bound we pause nix until it is flushed.
        pendingWrites += d.length;
        proc.stdin.write(d);
        if (pendingWrites > bound) conn.client.pause();
        void Promise.resolve(proc.stdin.flush()).then(() => {
          pendingWrites = 0;
          conn.client.resume();
        });
        return d.length;
      },
      pause() {
        paused ??= Promise.withResolvers<void>();
      },
      resume() {
        paused?.resolve();
        paused = undefined;
      },
      close() {
        void proc.stdin.end();
      },
    };
    conn.closeUpstream = () => {
      void proc.stdin.end();
    };
    conn.toUpstream.drain();
    (async () => {
      for (;;) {
        if (paused) await paused.promise;
        const r = await reader.read();
        if (r.done) break;
        stats.bytesToClient += r.value.length;
        conn.toClient.push(r.value);
      }
      finishToClient(conn);
    })().catch(() => finishToClient(conn));
  }

  /** Upstream is gone: deliver what is queued to nix, then close its connection. */
  function finishToClient(conn: Conn): void {
    conn.toClient.closing = true;
    conn.toClient.drain();
  }

  return { stats, stop: () => server.stop(true) };
}
