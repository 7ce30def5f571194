// A remote command's byte streams, whatever carries them: an ssh2 exec channel or a local child
// process. The serve protocol client speaks through this, so the same code reads the local store
// and writes a remote one, and the reverse.
import type { ByteSource } from "./wire.ts";

export interface ExitStatus {
  code: number | null;
  signal?: string;
}

export interface Duplex {
  /** Where the command runs and what it is, for messages: "root@node1:22: nix-store --serve --write". */
  readonly describe: string;
  /** The command's stdout. */
  readonly stdout: ByteSource;
  /** Writes to the command's stdin; resolves when the bytes are accepted (backpressure). */
  write(bytes: Uint8Array): Promise<void>;
  /** Where the transport can take a file's bytes without nsh reading them (a pipe: sendfile(2)). */
  writeFromFile?(fd: number, offset: number, length: number, onBytes?: (n: number) => void): Promise<void>;
  /** Closes the command's stdin. */
  end(): Promise<void>;
  /** The last few KiB of the command's stderr, for error messages. */
  stderrTail(): string;
  /** Called with each complete line the command writes to stderr (build logs, errors). */
  onStderrLine: (line: string) => void;
  /** Resolves when the command has exited. */
  readonly exited: Promise<ExitStatus>;
  /** Ends the command and its transport at once. */
  close(): void;
}

/** Keeps the tail of a byte stream as text and splits it into lines. */
export class StderrCollector {
  private tail = "";
  private partial = "";
  constructor(
    private readonly limit = 8192,
    private readonly onLine: () => (line: string) => void,
  ) {}

  push(chunk: Uint8Array | string): void {
    const text = typeof chunk === "string" ? chunk : new TextDecoder().decode(chunk);
    this.tail = (this.tail + text).slice(-this.limit);
    const lines = (this.partial + text).split("\n");
    this.partial = lines.pop() ?? "";
    for (const l of lines) this.onLine()(l);
  }

  text(): string {
    return this.tail;
  }
}
