// The wrapper's side of the guard: starts it (in relay mode on the listening socket the wrapper
// made), tells it which nix to look after, hears about relay pressure, and collects its statistics.
import type { Subprocess } from "bun";
import { readStartTime } from "../sys/proc.ts";
import { LineSplitter } from "./events.ts";
import { GUARD_LISTEN_FD, type GuardConfig, type GuardLine, type GuardStats } from "./guard.ts";
import { selfCommand } from "../util/self.ts";

export class GuardLink {
  onPressure: (full: boolean) => void = () => {};
  /** True once the guard runs (in relay mode: serves the socket); false if it exited before that. */
  readonly ready: Promise<boolean>;
  private readonly readyP = Promise.withResolvers<boolean>();
  private readonly statsP = Promise.withResolvers<GuardStats | undefined>();

  private constructor(private readonly proc: Subprocess<"pipe", "pipe", "inherit">) {
    this.ready = this.readyP.promise;
    void this.listen();
  }

  /**
   * Starts the guard without waiting for it. In relay mode (`listenFd` given) nix may connect at
   * once and waits in the socket's backlog until the guard accepts. Throws if it cannot be spawned.
   */
  static start(config: GuardConfig, listenFd?: number): GuardLink {
    const stdio: ["pipe", "pipe", "inherit", ...number[]] = ["pipe", "pipe", "inherit"];
    // The guard expects the socket at GUARD_LISTEN_FD; Bun's extra stdio entries start at fd 3.
    if (listenFd !== undefined) stdio[GUARD_LISTEN_FD] = listenFd;
    // detached: its own session, so a Ctrl-C or a kill of the wrapper's group leaves it standing.
    const argv = [...selfCommand(), "__sigstop-guard", JSON.stringify(config)];
    const proc = Bun.spawn(argv, { detached: true, stdio }) as unknown as Subprocess<"pipe", "pipe", "inherit">;
    return new GuardLink(proc);
  }

  private async listen(): Promise<void> {
    const splitter = new LineSplitter();
    const decoder = new TextDecoder();
    try {
      for await (const chunk of this.proc.stdout) {
        for (const line of splitter.push(decoder.decode(chunk, { stream: true }))) {
          if (line === "ready") {
            this.readyP.resolve(true);
            continue;
          }
          const msg = JSON.parse(line) as GuardLine;
          if ("pressure" in msg) this.onPressure(msg.pressure);
          else this.statsP.resolve(msg.stats);
        }
      }
    } catch {}
    this.readyP.resolve(false);
    this.statsP.resolve(undefined);
  }

  async watch(pid: number): Promise<void> {
    this.proc.stdin.write(`${JSON.stringify({ watch: pid, start: readStartTime(pid) ?? 0 })}\n`);
    await this.proc.stdin.flush();
  }

  /** nix has exited and been reaped: the guard may go. Returns its statistics. */
  async bye(): Promise<GuardStats | undefined> {
    try {
      this.proc.stdin.write(`${JSON.stringify({ bye: true })}\n`);
      await this.proc.stdin.end();
    } catch {}
    // The guard exits by itself right after its statistics line.
    const timeout = Bun.sleep(2000).then(() => "timeout" as const);
    const stats = await Promise.race([this.statsP.promise, timeout]);
    if (stats === "timeout") {
      this.proc.kill();
      return undefined;
    }
    return stats;
  }

  kill(): void {
    this.proc.kill();
  }
}
