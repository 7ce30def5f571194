// The guard: a detached process that outlives the wrapper. If the wrapper dies without saying
// goodbye (even by SIGKILL), the guard continues nix at once, so nix is never left stopped.
//
// Relay mode: it also hosts the daemon relay and keeps relaying nix's daemon traffic until nix
// exits. It runs one synchronous poll(2) loop (src/sigstop/relay.ts) over the listening socket the
// wrapper made and passed as fd 3, nix's connections, their upstreams and the wrapper's commands on
// stdin: it has nothing else to do, and staying out of the JS event loop keeps each message cheap.
// Direct mode: nix talks to the daemon itself, and the guard only watches the wrapper's stdin.
import fs from "node:fs";
import { readProcStatus, readStartTime } from "../sys/proc.ts";
import { close, connectUnix, POLLIN, PollSet, readFd, socketPair } from "../sys/sock.ts";
import { reapIfExited } from "../sys/libc.ts";
import { LineSplitter } from "./events.ts";
import { Relay } from "./relay.ts";
import type { Upstream } from "./store.ts";

/** The listening socket's fd in the guard (the wrapper binds it, so nix can connect at once). */
export const GUARD_LISTEN_FD = 3;

export interface GuardConfig {
  /** The wrapper's runtime directory: the guard removes it if the wrapper cannot. */
  runtimeDir: string;
  /** Relay mode (listening socket at GUARD_LISTEN_FD); absent in direct mode. */
  relay?: { upstream: Upstream; bufferBytes: number; daemonProgram: string };
}

/** Messages from the wrapper on the guard's stdin, one per line. */
export type GuardCommand = { watch: number; start: number } | { bye: true };

export interface GuardStats {
  peakRssBytes: number;
  cpuSeconds: number;
  relay?: { connections: number; peakQueued: number; bytesToClient: number };
}

/** Messages to the wrapper on the guard's stdout, one per line after "ready". */
export type GuardLine = { pressure: boolean } | { stats: GuardStats };

/** What the guard's loop needs: the relay, or in direct mode a plain poll on stdin. */
interface Loop {
  watch(fd: number, onReadable: () => void): void;
  unwatch(fd: number): void;
  step(timeoutMs: number): void;
  closeAll(): void;
}

/** Direct mode's loop: nothing to relay. */
class WatchLoop implements Loop {
  private readonly watched = new Map<number, () => void>();
  private readonly set = new PollSet();
  watch(fd: number, onReadable: () => void): void {
    this.watched.set(fd, onReadable);
  }
  unwatch(fd: number): void {
    this.watched.delete(fd);
  }
  step(timeoutMs: number): void {
    this.set.clear();
    const fds = [...this.watched];
    for (const [fd] of fds) this.set.add(fd, POLLIN);
    if (this.set.wait(timeoutMs) === 0) return;
    fds.forEach(([, cb], i) => {
      if (this.set.revents(i) !== 0) cb();
    });
  }
  closeAll(): void {}
}

function say(line: string): void {
  try {
    fs.writeSync(1, `${line}\n`);
  } catch {
    // The wrapper is gone: stdin's end of file tells the loop so.
  }
}

/** The store connection for one nix connection: the daemon's socket, or a private `nix-daemon --stdio`. */
function upstreamOpener(upstream: Upstream, program: string): () => number {
  if (upstream.kind === "socket") {
    return () => {
      try {
        return connectUnix(upstream.path);
      } catch (e) {
        throw new Error(`cannot connect to the Nix daemon at ${upstream.path}: ${(e as Error).message}`);
      }
    };
  }
  if (upstream.kind === "unsupported") throw new Error(upstream.reason);
  const store = upstream.store;
  // The loop never yields to Bun's event loop, which would reap our daemons: we do, whenever a new
  // one starts (a daemon exits when its nix connection closes), so zombies never pile up.
  const daemons = new Set<number>();
  return () => {
    for (const pid of daemons) if (reapIfExited(pid)) daemons.delete(pid);
    const [mine, theirs] = socketPair();
    try {
      // NIX_REMOTE as well as --option: a daemon whose store resolved to `auto` could loop back (§3).
      const d = Bun.spawn([program, "--stdio", "--option", "store", store], { stdio: [theirs, theirs, "inherit"], env: { ...process.env, NIX_REMOTE: store } });
      daemons.add(d.pid);
    } catch (e) {
      close(mine);
      throw new Error(`cannot start '${program} --stdio': ${(e as Error).message}`);
    } finally {
      close(theirs);
    }
    return mine;
  };
}

export function runGuard(config: GuardConfig): number {
  const relay = config.relay
    ? new Relay({
        listenFd: GUARD_LISTEN_FD,
        bound: config.relay.bufferBytes,
        openUpstream: upstreamOpener(config.relay.upstream, config.relay.daemonProgram),
        onPressure: (full) => say(JSON.stringify({ pressure: full })),
        onError: (m) => process.stderr.write(`nix-sigstop: ${m}\n`),
      })
    : undefined;
  const loop: Loop = relay ?? new WatchLoop();
  say("ready");
  let nix: { pid: number; start: number } | undefined;
  let bye = false;
  let wrapperGone = false;
  const splitter = new LineSplitter();
  const decoder = new TextDecoder();
  const buf = new Uint8Array(4096);
  loop.watch(0, () => {
    const n = readFd(0, buf);
    if (n <= 0) {
      wrapperGone = true;
      loop.unwatch(0);
      return;
    }
    for (const line of splitter.push(decoder.decode(buf.subarray(0, n), { stream: true }))) {
      const cmd = JSON.parse(line) as GuardCommand;
      if ("watch" in cmd) nix = { pid: cmd.watch, start: cmd.start };
      else bye = true;
    }
  });
  while (!bye && !wrapperGone) loop.step(-1);
  if (bye) {
    // The wrapper saw nix exit: report and go.
    const hwm = readProcStatus(process.pid)?.hwmBytes ?? 0;
    const cpu = process.cpuUsage();
    const stats: GuardStats = { peakRssBytes: hwm, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
    if (relay) stats.relay = { connections: relay.stats.connections, peakQueued: relay.stats.peakQueued, bytesToClient: relay.stats.bytesToClient };
    say(JSON.stringify({ stats }));
    loop.closeAll();
    return 0;
  }
  // The wrapper vanished. Continue nix if it is still the process we were told about.
  if (nix && readStartTime(nix.pid) === nix.start) {
    try {
      process.kill(nix.pid, "SIGCONT");
    } catch {}
    process.stderr.write(`nix-sigstop: the wrapper exited unexpectedly; continued nix (pid ${nix.pid})${relay ? " and keep relaying until it exits" : ""}\n`);
    // nix's build hook is our script in the runtime directory: keep it until nix is done.
    while (readStartTime(nix.pid) === nix.start && readProcStatus(nix.pid)?.state !== "Z") loop.step(500);
  }
  loop.closeAll();
  // The wrapper cannot clean up after itself any more.
  fs.rmSync(config.runtimeDir, { recursive: true, force: true });
  return 0;
}
