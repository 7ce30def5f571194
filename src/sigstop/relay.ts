// The daemon relay: a poll(2) loop on raw fds that passes bytes between nix's connections and their
// upstreams, unparsed, with a bounded queue per direction. While nix is stopped it reads nothing, so
// the daemon→nix queue fills to the bound and then we stop reading the daemon (real backpressure)
// instead of growing or dropping the connection, and say so ("pressure") so nix can be let run to
// drain. Synchronous by design: one poll wake-up and one recv/send pair per message is what keeps
// the proxy's cost per daemon round trip small (the JS event loop path cost ~100 µs per message).
import { ByteQueue, ChunkPool } from "./byte-queue.ts";
import { accept, close, EAGAIN, POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, PollSet, recv, send, setNonBlocking } from "../sys/sock.ts";

export interface RelayStats {
  connections: number;
  open: number;
  /** Most bytes ever queued in one direction of one connection. */
  peakQueued: number;
  /** Bytes relayed from the store to nix. */
  bytesToClient: number;
}

export interface RelayOptions {
  /** Listening socket nix connects to. */
  listenFd: number;
  /** Bytes queued per connection and direction before the relay stops reading the source. */
  bound: number;
  /** A connected fd to the store for one new nix connection (the relay makes it non-blocking). */
  openUpstream(): number;
  /** Some connection's daemon→nix queue is full (true), or none is any more (false). */
  onPressure?(full: boolean): void;
  onError?(message: string): void;
}

/** Bytes waiting for one sink. */
class Queue extends ByteQueue {
  /** The source is not read while this queue is above the bound. */
  full = false;
}

interface Conn {
  client: number;
  upstream: number;
  toClient: Queue;
  toUpstream: Queue;
  /** The store closed (or failed): deliver what is queued to nix, then close nix's connection. */
  upstreamDone: boolean;
  /** The store hung up while we were not reading it: poll it again only once we read again. */
  upstreamHup: boolean;
}

const READ_SIZE = 64 * 1024;
const BROKEN = POLLERR | POLLHUP | POLLNVAL;

export class Relay {
  readonly stats: RelayStats = { connections: 0, open: 0, peakQueued: 0, bytesToClient: 0 };
  private readonly conns = new Set<Conn>();
  private readonly watched = new Map<number, () => void>();
  private readonly buf = new Uint8Array(READ_SIZE);
  private readonly set = new PollSet();
  private readonly pool = new ChunkPool(READ_SIZE, 64);
  private fullCount = 0;
  private listening = true;

  constructor(private readonly opts: RelayOptions) {
    setNonBlocking(opts.listenFd);
  }

  /** Calls `onReadable` whenever `fd` is readable (or hung up) in a later step. */
  watch(fd: number, onReadable: () => void): void {
    this.watched.set(fd, onReadable);
  }

  unwatch(fd: number): void {
    this.watched.delete(fd);
  }

  /** Waits up to `timeoutMs` (-1: no limit) for something to do, and does it. */
  step(timeoutMs: number): void {
    const set = this.set;
    set.clear();
    const listenAt = this.listening ? set.add(this.opts.listenFd, POLLIN) : -1;
    const watched = [...this.watched];
    for (const [fd] of watched) set.add(fd, POLLIN);
    // Per connection: the index of its client entry, and of its upstream entry (-1 if not polled).
    const slots: [Conn, number, number][] = [];
    for (const c of this.conns) {
      const ci = set.add(c.client, (c.toUpstream.full || c.upstreamDone ? 0 : POLLIN) | (c.toClient.bytes > 0 ? POLLOUT : 0));
      const upEvents = (c.toClient.full ? 0 : POLLIN) | (c.toUpstream.bytes > 0 ? POLLOUT : 0);
      // A hung-up fd reports POLLHUP whatever we ask for: leave it out until we read it again.
      const ui = c.upstreamDone || (c.upstreamHup && c.toClient.full) ? -1 : set.add(c.upstream, upEvents);
      slots.push([c, ci, ui]);
    }
    if (set.wait(timeoutMs) === 0) return;
    for (const [c, ci, ui] of slots) {
      if (ui >= 0) this.upstreamEvents(c, set.revents(ui));
      if (this.conns.has(c)) this.clientEvents(c, set.revents(ci));
    }
    for (let i = 0; i < watched.length; i++) if (set.revents(i + (listenAt >= 0 ? 1 : 0)) !== 0) watched[i]![1]();
    if (listenAt >= 0 && set.revents(listenAt) & POLLIN) this.acceptAll();
  }

  /** Closes every connection and stops accepting. */
  closeAll(): void {
    for (const c of [...this.conns]) this.teardown(c);
    this.listening = false;
  }

  private acceptAll(): void {
    for (;;) {
      let fd: number;
      try {
        fd = accept(this.opts.listenFd);
      } catch (e) {
        // EMFILE and the like: try again on the next step rather than die.
        this.opts.onError?.((e as Error).message);
        return;
      }
      if (fd < 0) return;
      let upstream: number;
      try {
        upstream = this.opts.openUpstream();
        setNonBlocking(upstream);
      } catch (e) {
        this.opts.onError?.((e as Error).message);
        close(fd);
        continue;
      }
      this.stats.connections++;
      this.stats.open++;
      this.conns.add({ client: fd, upstream, toClient: new Queue(this.pool), toUpstream: new Queue(this.pool), upstreamDone: false, upstreamHup: false });
    }
  }

  private clientEvents(c: Conn, ev: number): void {
    if (ev & POLLOUT && !this.flush(c.toClient, c.client, c, true)) return this.teardown(c);
    if (c.upstreamDone && c.toClient.bytes === 0) return this.teardown(c);
    if (ev & (POLLIN | BROKEN)) {
      const n = recv(c.client, this.buf);
      if (n === -EAGAIN) return;
      // nix is gone: the daemon only cancels its builds on EOF or HUP, so close upstream at once.
      if (n <= 0) return this.teardown(c);
      if (!c.upstreamDone) this.push(c.toUpstream, c.upstream, n, c, false);
    }
  }

  private upstreamEvents(c: Conn, ev: number): void {
    if (ev & POLLOUT && !this.flush(c.toUpstream, c.upstream, c, false)) {
      // The store stopped reading: what it already sent may still be waiting for us.
      c.toUpstream.clear();
    }
    if (ev & (POLLIN | BROKEN)) {
      if (c.toClient.full) {
        c.upstreamHup = true;
        return;
      }
      const n = recv(c.upstream, this.buf);
      if (n === -EAGAIN) return;
      if (n <= 0) return this.upstreamGone(c);
      this.stats.bytesToClient += n;
      this.push(c.toClient, c.client, n, c, true);
    }
  }

  /** Sends `n` bytes of the read buffer to `sink`, queueing what it cannot take now. */
  private push(q: Queue, sink: number, n: number, c: Conn, toClient: boolean): void {
    let sent = 0;
    if (q.bytes === 0) {
      const w = send(sink, this.buf, 0, n);
      if (w === n) return;
      if (w >= 0) sent = w;
      else if (w !== -EAGAIN) {
        // A dead sink: nix gone means the end of the connection; a dead store is noticed by reading it.
        if (toClient) this.teardown(c);
        return;
      }
    }
    // The read buffer is reused for the next read: the queue keeps a copy.
    q.append(this.buf, sent, n);
    if (q.bytes > this.stats.peakQueued) this.stats.peakQueued = q.bytes;
    if (q.bytes > this.opts.bound && !q.full) {
      q.full = true;
      if (toClient) this.pressure(1);
    }
  }

  /** Sends what is queued; false if the sink is gone. */
  private flush(q: Queue, sink: number, c: Conn, toClient: boolean): boolean {
    const e = q.drainTo((buf, off, len) => send(sink, buf, off, len));
    if (e !== 0 && e !== -EAGAIN) return false;
    if (q.full && q.bytes <= this.opts.bound / 2) {
      q.full = false;
      if (toClient) {
        c.upstreamHup = false;
        this.pressure(-1);
      }
    }
    return true;
  }

  private upstreamGone(c: Conn): void {
    c.upstreamDone = true;
    close(c.upstream);
    c.upstream = -1;
    if (c.toClient.bytes === 0) this.teardown(c);
  }

  private teardown(c: Conn): void {
    if (!this.conns.delete(c)) return;
    c.toClient.clear();
    c.toUpstream.clear();
    this.stats.open--;
    if (c.toClient.full) this.pressure(-1);
    if (c.upstream >= 0) close(c.upstream);
    close(c.client);
  }

  private pressure(delta: number): void {
    const was = this.fullCount;
    this.fullCount += delta;
    if ((was === 0) !== (this.fullCount === 0)) this.opts.onPressure?.(this.fullCount > 0);
  }
}
