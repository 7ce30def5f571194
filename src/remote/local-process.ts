// A Duplex over a child process: the local store's `nix-store --serve`, OpenSSH's `ssh` for bulk
// transfers (openssh.ts), or tests.
import fs from "node:fs";
import { pipe } from "../sys/libc.ts";
import { PipeWriter } from "../sys/pipe-writer.ts";
import { StderrCollector, type Duplex, type ExitStatus } from "../nix/duplex.ts";

export function spawnDuplex(argv: string[], opts: { env?: Record<string, string | undefined>; describe?: string } = {}): Duplex {
  const proc = Bun.spawn(argv, { stdin: "pipe", stdout: "pipe", stderr: "pipe", env: opts.env as Record<string, string> | undefined });
  const duplex: Duplex = {
    describe: opts.describe ?? argv.join(" "),
    stdout: proc.stdout.getReader() as never,
    async write(bytes) {
      proc.stdin.write(bytes);
      await proc.stdin.flush();
    },
    async end() {
      try {
        await proc.stdin.end();
      } catch {}
    },
    stderrTail: () => collector.text(),
    onStderrLine: () => {},
    exited: exitStatus(proc),
    close: () => proc.kill("SIGKILL"),
  };
  const collector = collectStderr(proc.stderr, () => duplex.onStderrLine);
  return duplex;
}

/**
 * Like spawnDuplex, but stdin is a pipe nsh made itself, written with write(2) and, for file
 * contents, sendfile(2) (`writeFromFile`), so big files never pass through nsh. Chunks written
 * this way cost more CPU than Bun's own stdin sink (718 against 431–534 ms per GiB, measured), so
 * only the bulk transfers use it.
 */
export function spawnPipeDuplex(argv: string[], opts: { env?: Record<string, string | undefined>; describe?: string } = {}): Duplex {
  const describe = opts.describe ?? argv.join(" ");
  const [readEnd, writeEnd] = pipe();
  const spawn = () => {
    try {
      return Bun.spawn(argv, { stdin: readEnd, stdout: "pipe", stderr: "pipe", env: (opts.env ?? process.env) as Record<string, string> });
    } catch (e) {
      fs.closeSync(writeEnd);
      throw e;
    } finally {
      fs.closeSync(readEnd); // the child has its copy
    }
  };
  const proc = spawn();
  const writer = new PipeWriter(writeEnd, describe);
  const duplex: Duplex = {
    describe,
    stdout: proc.stdout.getReader() as never,
    write: (bytes) => writer.write(bytes),
    writeFromFile: (fd, offset, length, onBytes) => writer.writeFromFile(fd, offset, length, onBytes),
    async end() {
      writer.close();
    },
    stderrTail: () => collector.text(),
    onStderrLine: () => {},
    exited: exitStatus(proc),
    close: () => {
      proc.kill("SIGKILL");
      writer.close();
    },
  };
  const collector = collectStderr(proc.stderr, () => duplex.onStderrLine);
  return duplex;
}

/** A child's exit as a Duplex reports it. */
export function exitStatus(proc: { exited: Promise<number>; signalCode: string | number | null }): Promise<ExitStatus> {
  return proc.exited.then((code): ExitStatus => ({ code: proc.signalCode ? null : code, signal: proc.signalCode ? String(proc.signalCode) : undefined }));
}

/** Reads a child's stderr to its end: kept as a tail for messages, passed on line by line. */
export function collectStderr(stderr: ReadableStream<Uint8Array>, onLine: () => (line: string) => void): StderrCollector {
  const collector = new StderrCollector(8192, onLine);
  void (async () => {
    for await (const chunk of stderr) collector.push(chunk);
  })().catch(() => {});
  return collector;
}
