// A Duplex over a local child process (the local store's `nix-store --serve`, or tests).
import { StderrCollector, type Duplex, type ExitStatus } from "./duplex.ts";

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
    exited: proc.exited.then((code): ExitStatus => ({ code: proc.signalCode ? null : code, signal: proc.signalCode ? String(proc.signalCode) : undefined })),
    close: () => proc.kill("SIGKILL"),
  };
  const collector = new StderrCollector(8192, () => duplex.onStderrLine);
  void (async () => {
    for await (const chunk of proc.stderr) collector.push(chunk);
  })().catch(() => {});
  return duplex;
}
