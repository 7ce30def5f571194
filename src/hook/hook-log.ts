// What a hook tells Nix: `@nix` JSON messages on fd 2 (Nix 2.8 has no try/catch around them, so
// every object is complete and well-typed: integer level 0-7, string msg), and raw build log lines
// on fd 4 (shown to the user and kept for `nix log`). Messages above the verbosity Nix gave us in
// argv are not sent at all.
import { nixMsg } from "../nix/hook-protocol.ts";

export const Verbosity = { error: 0, warn: 1, notice: 2, info: 3, talkative: 4, chatty: 5, debug: 6, vomit: 7 } as const;
export type Level = (typeof Verbosity)[keyof typeof Verbosity];

export type Sink = (bytes: Uint8Array | string) => void;

export class HookLog {
  constructor(
    readonly verbosity: number,
    private readonly toNix: Sink,
    private readonly toBuildLog: Sink = () => {},
    private readonly tag = "nsh",
  ) {}

  msg(level: Level, text: string): void {
    const l = Math.min(7, Math.max(0, Math.trunc(level))) as Level;
    if (l > this.verbosity) return;
    this.toNix(nixMsg(l, String(text)));
  }

  error(text: string): void {
    this.msg(Verbosity.error, `${this.tag}: error: ${text}`);
  }
  warn(text: string): void {
    this.msg(Verbosity.warn, `${this.tag}: warning: ${text}`);
  }
  info(text: string): void {
    this.msg(Verbosity.info, `${this.tag}: ${text}`);
  }
  talkative(text: string): void {
    this.msg(Verbosity.talkative, `${this.tag}: ${text}`);
  }
  debug(text: string): void {
    this.msg(Verbosity.debug, `${this.tag}: ${text}`);
  }

  /** The build's own output (fd 4) as it comes: Nix splits it into lines itself (`\r` resets one). */
  buildOutput(bytes: Uint8Array | string): void {
    if (bytes.length > 0) this.toBuildLog(bytes);
  }

  /** One whole line of build output. */
  buildLine(text: string): void {
    this.toBuildLog(text.endsWith("\n") ? text : `${text}\n`);
  }
}
