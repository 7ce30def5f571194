// nix-sigstop's logger. Lines as util/log.ts writes them off a terminal ("nix-sigstop: warning: …"),
// without loading consola: that cost the wrapper's start-up, which every evaluation pays, ~9 ms.
// On a terminal (without --verbose) consola's own layout is kept. Not process.stderr either: its
// stream costs ~5 ms of CPU to set up in a compiled Bun (bench/startup.ts).
import { writeAll } from "../nix/hook-child.ts";
import { isTty } from "../sys/libc.ts";

export interface SigstopLog {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export interface LogOptions {
  verbose?: boolean;
  quiet?: boolean;
}

/** consola's levels: 0 error, 1 warn, 3 info, 4 debug; --quiet keeps warnings and errors. */
export function plainLog(tag: string, opts: LogOptions, write: (line: string) => void = (l) => writeAll(2, l)): SigstopLog {
  const level = opts.quiet ? 1 : opts.verbose ? 4 : 3;
  const line = (at: number, prefix: string) => (msg: string) => {
    if (at > level) return;
    // With --verbose, the time since start: when nix was stopped and continued matters.
    const time = opts.verbose ? `[${(performance.now() / 1000).toFixed(2)}s] ` : "";
    write(`${tag}: ${time}${prefix}${msg}\n`);
  };
  return { error: line(0, "error: "), warn: line(1, "warning: "), info: line(3, ""), debug: line(4, "") };
}

export async function makeSigstopLog(tag: string, opts: LogOptions): Promise<SigstopLog> {
  if (isTty(2) && !opts.verbose) return (await import("../util/log.ts")).makeLogger(tag, opts);
  return plainLog(tag, opts);
}
