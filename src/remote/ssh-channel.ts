// An ssh2 exec channel as a Duplex: stdout pulled with backpressure (unread data stops the peer
// through the SSH window), stdin writes that wait for ssh2's buffer to drain, and a dropped
// connection or a missing program surfacing as errors that name the host, never as a clean EOF.
import * as path from "node:path";
import type { ClientChannel } from "ssh2";
import { StderrCollector, type Duplex, type ExitStatus } from "../nix/duplex.ts";
import type { Destination } from "./destination.ts";

export interface SshDuplex extends Duplex {
  /** "alias (user@host:port)", the host the command runs on. */
  readonly host: string;
}

/** A stream to a unix socket on a host through the machine's ssh relay; undefined: the relay is not available. */
export type RelayOpen = (dest: Destination, socketPath: string) => Promise<SshDuplex | undefined>;

/** What a channel needs of its connection. */
export interface ChannelConn {
  label: string;
  /** Open channels, for reuse decisions; a channel decrements it when it closes. */
  channels: number;
  /** Fails the channels still open when the connection drops. */
  live: Set<(err: Error) => void>;
}

/** Every ssh failure nsh reports; `failures` lists each host tried when all of them failed. */
export class SshError extends Error {
  override name = "SshError";
  constructor(message: string, readonly failures: string[] = []) {
    super(message);
  }
}

/** The program a command line runs, for "nix-store not found" messages. */
const programOf = (command: string) => path.basename(command.trim().split(/\s+/)[0]?.replace(/^'|'$/g, "") ?? command);

export function channelDuplex(conn: ChannelConn, channel: ClientChannel, command: string): SshDuplex {
  const describe = `${conn.label}: ${command}`;
  let failure: Error | undefined;
  let exit: ExitStatus | undefined;
  let closed = false;
  let closedByUs = false;
  let stdinEnded = false;
  let waiters: (() => void)[] = [];
  const wake = () => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  const changed = () => new Promise<void>((r) => waiters.push(r));
  let settle!: { resolve: (s: ExitStatus) => void; reject: (e: Error) => void };
  // Settles at the exit status like a child's exit, even when stdout was not read to its end.
  const exited = new Promise<ExitStatus>((resolve, reject) => (settle = { resolve, reject }));
  exited.catch(() => {}); // a lost connection rejects it; callers that never await must not crash
  const onLost = (err: Error) => {
    failure ??= err;
    settle.reject(failure);
    wake();
  };
  conn.live.add(onLost);
  channel.on("exit", (code: number | null, signal?: string) => {
    exit = typeof code === "number" ? { code } : { code: null, signal };
    settle.resolve(exit);
    wake();
  });
  channel.on("readable", wake).on("end", wake).on("drain", wake).on("finish", wake);
  channel.on("error", (e: Error) => onLost(new SshError(`${describe}: ${e.message}`)));
  // ssh2 emits "close" only once stdout was read to its end (close() drains it).
  channel.on("close", () => {
    closed = true;
    conn.live.delete(onLost);
    conn.channels--;
    settle.resolve(exit ?? { code: null });
    wake();
  });
  const collector = new StderrCollector(8192, () => duplex.onStderrLine);
  channel.stderr.on("data", (c: Buffer) => collector.push(c));

  const notFound = () => {
    const prog = programOf(command);
    const why = collector.text().trim().split("\n").pop() ?? "";
    const hint = prog.startsWith("nix") ? ": set remote-nix-bin-dir in nsh.conf to the directory that holds it on that host" : "";
    return new SshError(`${prog} not found on ${conn.label}${hint} (exit 127${why ? `: ${why}` : ""})`);
  };
  // stdout ended: a dropped connection or a missing program must not look like a clean end.
  const atEnd = async (): Promise<{ done: true }> => {
    let stop = () => {};
    const timeout = new Promise<undefined>((r) => (stop = () => r(undefined)));
    const timer = setTimeout(stop, 2000);
    const status = await Promise.race([exited, timeout]).finally(() => clearTimeout(timer));
    if (failure) throw failure;
    if (status?.code === 127) throw notFound();
    return { done: true };
  };

  const duplex: SshDuplex = {
    describe,
    host: conn.label,
    stdout: {
      async read() {
        for (;;) {
          if (failure && !closedByUs) throw failure;
          const chunk = channel.read() as Buffer | null;
          if (chunk !== null) return { done: false, value: new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength) };
          if (closedByUs) return { done: true };
          if (channel.readableEnded) return atEnd();
          await changed();
        }
      },
    },
    async write(bytes) {
      const stopped = (): Error | undefined => {
        if (failure) return failure;
        if (exit?.code === 127) return notFound();
        if (!exit && !closed && !stdinEnded) return undefined;
        const ended = `the command ended${exit ? ` (exit ${exit.code ?? exit.signal})` : ""}`;
        return new SshError(`${describe}: cannot write: ${stdinEnded ? "stdin was closed" : ended}`);
      };
      const err = stopped();
      if (err) throw err;
      channel.write(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      // ssh2 holds data past the peer's window: wait until its buffer drains below the high-water mark.
      while (channel.writableNeedDrain) {
        const e = stopped();
        if (e) throw e;
        await changed();
      }
    },
    async end() {
      if (stdinEnded || closed || failure) return;
      stdinEnded = true;
      channel.end();
      while (!channel.writableFinished && !closed && !exit && !failure) await changed();
    },
    stderrTail: () => collector.text(),
    onStderrLine: () => {},
    exited,
    close() {
      if (closed || closedByUs) return;
      closedByUs = true;
      try {
        channel.signal("KILL");
      } catch {}
      channel.close();
      // Discard unread output so ssh2 reaches "close" and the connection's channel count drops.
      channel.removeListener("readable", wake);
      channel.resume();
      wake();
    },
  };
  return duplex;
}
