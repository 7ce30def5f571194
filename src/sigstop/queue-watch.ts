// Direct mode's stand-in for the relay's bounded queue. nix talks to the daemon itself; while nix is
// stopped, the daemon's messages (build logs) pile up in nix's socket, and once the daemon's send
// buffer is full the daemon blocks, and the build nix waits for stalls behind its own log. So while
// nix is stopped (and while it drains) we look at its daemon sockets every 50 ms through sock_diag
// and raise "pressure" when the daemon's send buffer is half full, exactly as the relay does when its
// queue is full: the stopper lets nix run until the backlog is gone.
//
// Why the daemon's send buffer and not the bytes queued for nix: a unix stream socket charges each
// message's whole buffer (skb truesize, ~700 bytes even for a 100-byte log line) to the sender, so
// the daemon blocks with far fewer bytes queued than its buffer's size.
import fs from "node:fs";
import type { SigstopLog } from "./log.ts";
import { socketInodes } from "../sys/proc.ts";
import { probeSockDiag, SockDiag } from "../sys/sock-diag.ts";
import { SK_MEMINFO_SNDBUF, SK_MEMINFO_WMEM_ALLOC, UDIAG_SHOW_MEMINFO, UDIAG_SHOW_PEER, UDIAG_SHOW_RQLEN, UDIAG_SHOW_VFS } from "../sys/unix-diag.ts";

/** Pressure rises at this fill of a daemon connection's send buffer and falls below LOW for all. */
export const HIGH = 0.5;
export const LOW = 0.25;
/**
 * A connection whose peer we cannot look up is judged by the bytes queued for nix alone: the
 * smallest log messages take about 16 times their size of the sender's buffer, so the buffer counts
 * as full at 1/16 of its size in bytes. (A daemon in another network namespace is no such case: the
 * socket it accepts belongs to the namespace of the one who connected, nix.)
 */
export const BLIND_FACTOR = 16;
const SOCK_STREAM = 1;

export interface ConnSample {
  /** Bytes waiting in nix's receive queue. */
  queued: number;
  /** The daemon side's send-buffer use (truesize) and size, when its socket is visible to us. */
  daemonSend?: { used: number; size: number };
}

/** How full one connection is, as a fraction of the daemon's send buffer (`bufferBytes` if unknown). */
export function connFill(s: ConnSample, bufferBytes: number): number {
  if (s.daemonSend && s.daemonSend.size > 0) return s.daemonSend.used / s.daemonSend.size;
  return s.queued / (bufferBytes / BLIND_FACTOR);
}

/** Pressure with hysteresis: raised when one connection reaches HIGH, released when all are at LOW or below. */
export function nextPressure(raised: boolean, fills: readonly number[]): boolean {
  return raised ? fills.some((f) => f > LOW) : fills.some((f) => f >= HIGH);
}

export interface DirectStats {
  /** nix's daemon connections seen while it was stopped. */
  connections: number;
  /** Most bytes seen waiting for nix in one connection. */
  peakQueuedBytes: number;
  /** Most of the daemon's send buffer seen in use for one connection, and that buffer's size. */
  peakDaemonSendBytes: number;
  daemonSendBufferBytes: number;
  polls: number;
}

type Kind = { kind: "daemon"; peer: number } | { kind: "blind" } | { kind: "other" };

/** What pressure acts on: the Stopper. */
export interface PressureTarget {
  readonly stopped: boolean;
  onPressure(full: boolean): void;
}

/** What the wrapper needs for direct mode; throws (saying why) where the kernel cannot give it. */
export function openSockDiag(daemonSocket: string): { diag: SockDiag; daemonInode: number } {
  const st = fs.statSync(daemonSocket);
  if (!st.isSocket()) throw new Error(`${daemonSocket} is not a socket`);
  const diag = SockDiag.open();
  try {
    probeSockDiag(diag);
  } catch (e) {
    diag.close();
    throw e;
  }
  // unix_diag reports the inode as 32 bits.
  return { diag, daemonInode: st.ino >>> 0 };
}

function wmemDefault(): number {
  try {
    const n = Number(fs.readFileSync("/proc/sys/net/core/wmem_default", "utf8").trim());
    if (n > 0) return n;
  } catch {}
  return 212992;
}

export class DaemonQueueWatch {
  readonly stats: DirectStats = { connections: 0, peakQueuedBytes: 0, peakDaemonSendBytes: 0, daemonSendBufferBytes: 0, polls: 0 };
  /** Called once if sock_diag stops answering: the wrapper must then stop stopping nix. */
  onBlind: (why: string) => void = () => {};
  private raised = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  private readonly kinds = new Map<number, Kind>();
  private readonly bufferBytes = wmemDefault();

  constructor(
    private readonly pid: number,
    private readonly diag: SockDiag,
    private readonly daemonInode: number,
    private readonly target: PressureTarget,
    private readonly log: SigstopLog,
    private readonly intervalMs = 50,
  ) {}

  /** nix was stopped: watch its daemon sockets until it runs again and no pressure is left. */
  kick(): void {
    if (this.timer === undefined && !this.closed) this.timer = setTimeout(() => this.tick(), this.intervalMs);
  }

  close(): void {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.diag.close();
  }

  private tick(): void {
    this.timer = undefined;
    if (this.closed || (!this.target.stopped && !this.raised)) return;
    let fills: number[];
    try {
      fills = this.sample();
    } catch (e) {
      this.close();
      this.onBlind((e as Error).message);
      return;
    }
    const next = nextPressure(this.raised, fills);
    // Raise only for a stopped nix; a running one reads by itself.
    if (next !== this.raised && (!next || this.target.stopped)) {
      this.raised = next;
      this.log.debug(next ? `the daemon's send buffer towards nix is ${(Math.max(...fills) * 100).toFixed(0)} % full` : "nix has read the daemon's backlog");
      this.target.onPressure(next);
    }
    this.kick();
  }

  /** One fill per daemon connection of nix. */
  private sample(): number[] {
    this.stats.polls++;
    const fills: number[] = [];
    for (const ino of socketInodes(this.pid)) {
      const k = this.classify(ino);
      if (k.kind === "other") continue;
      const own = this.diag.query(ino, UDIAG_SHOW_RQLEN);
      if (!own) {
        this.kinds.delete(ino);
        continue;
      }
      const s: ConnSample = { queued: own.rqueue ?? 0 };
      if (k.kind === "daemon") {
        const p = this.diag.query(k.peer, UDIAG_SHOW_RQLEN | UDIAG_SHOW_MEMINFO);
        const used = p?.wqueue ?? p?.meminfo?.[SK_MEMINFO_WMEM_ALLOC];
        if (used !== undefined) s.daemonSend = { used, size: p?.meminfo?.[SK_MEMINFO_SNDBUF] ?? this.bufferBytes };
      }
      this.stats.peakQueuedBytes = Math.max(this.stats.peakQueuedBytes, s.queued);
      if (s.daemonSend) {
        this.stats.peakDaemonSendBytes = Math.max(this.stats.peakDaemonSendBytes, s.daemonSend.used);
        this.stats.daemonSendBufferBytes = s.daemonSend.size;
      }
      fills.push(connFill(s, this.bufferBytes));
    }
    return fills;
  }

  /** Whether a socket of nix is a connection to the daemon; remembered, as a socket's peer never changes. */
  private classify(ino: number): Kind {
    const known = this.kinds.get(ino);
    if (known) return known;
    const me = this.diag.query(ino, UDIAG_SHOW_PEER);
    let k: Kind;
    if (!me || me.type !== SOCK_STREAM) k = { kind: "other" }; // not a unix stream socket
    else if (me.peer === undefined) return { kind: "other" }; // not connected (yet): look again next time
    else {
      const peer = this.diag.query(me.peer, UDIAG_SHOW_VFS);
      // An accepted socket carries its listener's file: the daemon's socket.
      if (peer) k = peer.vfs?.inode === this.daemonInode ? { kind: "daemon", peer: me.peer } : { kind: "other" };
      else k = { kind: "blind" }; // out of sight (a socket nix inherited from another namespace): possibly the daemon
    }
    if (k.kind !== "other") this.stats.connections++;
    this.kinds.set(ino, k);
    return k;
  }
}
