// The wrapper's side of the guard: starts it, tells it which nix to look after, hears about proxy
// pressure, and collects its statistics at the end.
import type { Subprocess } from "bun";
import { readStartTime } from "../sys/proc.ts";
import { LineSplitter } from "./events.ts";
import type { GuardConfig } from "./guard.ts";
import type { SigstopReport } from "./report.ts";
import { selfCommand } from "../util/self.ts";

type GuardLine = { pressure: boolean } | { stats: { connections: number; peakQueued: number; bytesToClient: number; peakRssBytes: number } };

export class GuardLink {
  onPressure: (full: boolean) => void = () => {};
  private stats?: SigstopReport["proxy"];
  private ended = Promise.withResolvers<void>();

  private constructor(private readonly proc: Subprocess<"pipe", "pipe", "inherit">) {}

  /** Starts the guard; undefined if it did not come up (the caller then runs nix as is). */
  static async start(config: GuardConfig): Promise<GuardLink | undefined> {
    // detached: its own session, so a Ctrl-C or a kill of the wrapper's group leaves it standing.
    const proc = Bun.spawn([...selfCommand(), "__sigstop-guard", JSON.stringify(config)], { detached: true, stdin: "pipe", stdout: "pipe", stderr: "inherit" });
    const link = new GuardLink(proc);
    const ready = Promise.withResolvers<boolean>();
    void link.listen(ready);
    return (await ready.promise) ? link : undefined;
  }

  private async listen(ready: PromiseWithResolvers<boolean>): Promise<void> {
    const splitter = new LineSplitter();
    const decoder = new TextDecoder();
    try {
      for await (const chunk of this.proc.stdout) {
        for (const line of splitter.push(decoder.decode(chunk))) {
          if (line === "ready") {
            ready.resolve(true);
            continue;
          }
          const msg = JSON.parse(line) as GuardLine;
          if ("pressure" in msg) this.onPressure(msg.pressure);
          else this.stats = { connections: msg.stats.connections, peakQueuedBytes: msg.stats.peakQueued, bytesToClient: msg.stats.bytesToClient, peakRssBytes: msg.stats.peakRssBytes };
        }
      }
    } catch {}
    ready.resolve(false);
    this.ended.resolve();
  }

  async watch(pid: number): Promise<void> {
    this.proc.stdin.write(`${JSON.stringify({ watch: pid, start: readStartTime(pid) ?? 0 })}\n`);
    await this.proc.stdin.flush();
  }

  /** nix has exited and been reaped: the guard may go. Returns its proxy statistics. */
  async bye(): Promise<SigstopReport["proxy"]> {
    try {
      this.proc.stdin.write(`${JSON.stringify({ bye: true })}\n`);
      await this.proc.stdin.end();
    } catch {}
    await Promise.race([this.ended.promise, Bun.sleep(2000)]);
    this.proc.kill();
    return this.stats;
  }

  kill(): void {
    this.proc.kill();
  }
}
