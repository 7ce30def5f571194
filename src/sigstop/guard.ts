// The guard: a detached process that hosts the daemon proxy and outlives the wrapper. If the
// wrapper dies without saying goodbye (even by SIGKILL), the guard continues nix at once and keeps
// relaying its daemon traffic until nix exits, so nix is never left stopped or cut off.
import fs from "node:fs";
import path from "node:path";
import { readProcStatus, readStartTime } from "../sys/proc.ts";
import { startProxy } from "./proxy.ts";
import type { Upstream } from "./store.ts";

export interface GuardConfig {
  listen: string;
  upstream: Upstream;
  bufferBytes: number;
  daemonProgram: string;
}

/** Messages from the wrapper on the guard's stdin, one per line. */
export type GuardCommand = { watch: number; start: number } | { bye: true };

export async function runGuard(config: GuardConfig): Promise<number> {
  const proxy = startProxy(config.listen, config.upstream, config.bufferBytes, config.daemonProgram, (full) =>
    process.stdout.write(`${JSON.stringify({ pressure: full })}\n`),
  );
  process.stdout.write("ready\n");
  let nix: { pid: number; start: number } | undefined;
  let bye = false;
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const chunk of Bun.stdin.stream()) {
    buffered += decoder.decode(chunk);
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const cmd = JSON.parse(buffered.slice(0, nl)) as GuardCommand;
      buffered = buffered.slice(nl + 1);
      if ("watch" in cmd) nix = { pid: cmd.watch, start: cmd.start };
      else bye = true;
    }
    if (bye) break;
  }
  if (bye) {
    // The wrapper saw nix exit: report and go.
    const hwm = readProcStatus(process.pid)?.hwmBytes ?? 0;
    process.stdout.write(`${JSON.stringify({ stats: { ...proxy.stats, peakRssBytes: hwm } })}\n`);
    proxy.stop();
    return 0;
  }
  // The wrapper vanished. Continue nix if it is still the process we were told about.
  if (nix && readStartTime(nix.pid) === nix.start) {
    try {
      process.kill(nix.pid, "SIGCONT");
    } catch {}
    process.stderr.write(`nix-sigstop: the wrapper exited unexpectedly; continued nix (pid ${nix.pid}) and keep relaying until it exits\n`);
    while (readStartTime(nix.pid) === nix.start && readProcStatus(nix.pid)?.state !== "Z") await Bun.sleep(500);
  }
  proxy.stop();
  // The wrapper cannot clean up after itself any more: its runtime directory holds our socket.
  fs.rmSync(path.dirname(config.listen), { recursive: true, force: true });
  return 0;
}
