// Stops and continues the nix client as build events arrive, with admission on resume, and keeps
// the numbers for the report. Signals only: the decisions come from BuildTracker.
import type { SigstopLog } from "./log.ts";
import { isAlive, readProcStatus } from "../sys/proc.ts";
import { admit, markRunning, markStopped, mib, type AdmissionPolicy } from "./admission.ts";
import type { SharedDir } from "./shared-dir.ts";
import { BuildTracker, type BuildEvent } from "./events.ts";
import type { BuildRecord } from "./report.ts";

export class Stopper {
  readonly tracker = new BuildTracker();
  readonly builds = new Map<string, BuildRecord & { t0: number }>();
  stopped = false;
  stops = 0;
  stoppedMs = 0;
  resumeWaitMs = 0;
  peakSwap = 0;
  peakRss = 0;
  drainResumes = 0;
  /** Called after every SIGSTOP (direct mode watches nix's sockets from then on). */
  onStopped: () => void = () => {};
  private draining = false;
  private stoppedAt = 0;
  private resuming = false;
  /** Ends the turn this evaluation took to resume (see admission.ts). */
  private endTurn: () => void = () => {};
  private exited = false;
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(
    private readonly pid: number,
    private readonly policy: AdmissionPolicy,
    private readonly sharedDir: SharedDir | undefined,
    private readonly log: SigstopLog,
  ) {
    // While builds are pending: sample memory, and notice notifiers that died without a word.
    this.timer = setInterval(() => this.tick(), 500);
  }

  onEvent(e: BuildEvent): void {
    const now = Date.now();
    if (e.ev === "start") this.builds.set(e.id, { drv: e.drv, reply: e.reply, t0: now });
    else {
      const b = this.builds.get(e.id);
      if (b && b.ok === undefined) Object.assign(b, { ok: e.ok, seconds: (now - b.t0) / 1000 });
    }
    const action = this.tracker.onEvent(e, now);
    if (e.ev === "start") this.log.debug(`build started (${e.reply}): ${e.drv}`);
    else this.log.debug(`build ${e.ok ? "finished" : "ended without its outputs"}: ${e.drv}`);
    if (action === "stop" && !this.draining) this.stop(e.drv);
    else if (action === "resume") void this.resume();
  }

  private stop(drv: string, afterDrain = false): void {
    if (this.stopped || this.exited) return;
    try {
      process.kill(this.pid, "SIGSTOP");
    } catch {
      return;
    }
    this.stopped = true;
    this.stoppedAt = Date.now();
    markStopped(this.sharedDir, this.pid);
    this.onStopped();
    if (afterDrain) return;
    // Stopped again: the next evaluation may have its turn.
    this.endTurn();
    this.endTurn = () => {};
    this.stops++;
    this.sample();
    this.log.info(`stopped nix (pid ${this.pid}, RSS ${mib(this.peakRssNow())}) while it waits for ${drv}`);
  }

  private async resume(): Promise<void> {
    if (!this.stopped || this.resuming) return;
    this.resuming = true;
    try {
      const adm = await admit(this.pid, this.sharedDir, this.policy, (m) => this.log.info(m), () => this.tracker.active.size > 0 || this.exited);
      this.resumeWaitMs += adm.waitedMs;
      if (this.tracker.active.size > 0 || this.exited) {
        adm.release(); // a new build started meanwhile: stay stopped
        return;
      }
      this.cont();
      this.log.info(`continued nix (pid ${this.pid}) after ${((Date.now() - this.stoppedAt) / 1000).toFixed(1)} s`);
      this.endTurn = adm.release;
    } finally {
      this.resuming = false;
    }
  }

  /**
   * The daemon's messages to nix fill the relay's queue (relay mode) or the daemon's send buffer
   * (direct mode): the daemon waits for nix, and with it the build nix waits for. Let nix run
   * until the backlog has drained, then stop it again if builds remain.
   */
  onPressure(full: boolean): void {
    if (full && this.stopped) {
      this.drainResumes++;
      this.draining = true;
      this.cont();
      this.log.debug("continued nix to drain the daemon's messages");
    } else if (!full && this.draining) {
      this.draining = false;
      if (this.tracker.active.size > 0) this.stop([...this.tracker.active.values()][0]!.drv, true);
    }
  }

  /** SIGCONT now, whatever the admission says: for signals and exit. */
  cont(): void {
    if (!this.stopped) return;
    try {
      process.kill(this.pid, "SIGCONT");
    } catch {}
    this.stopped = false;
    this.stoppedMs += Date.now() - this.stoppedAt;
    markRunning(this.sharedDir, this.pid);
  }

  private peakRssNow(): number {
    return readProcStatus(this.pid)?.rssBytes ?? 0;
  }

  private sample(): void {
    const st = readProcStatus(this.pid);
    if (!st) return;
    this.peakRss = Math.max(this.peakRss, st.hwmBytes);
    if (this.stopped) this.peakSwap = Math.max(this.peakSwap, st.swapBytes);
  }

  private tick(): void {
    this.sample();
    if (this.tracker.active.size === 0) return;
    for (const id of this.tracker.vanished(isAlive)) {
      const b = this.tracker.active.get(id);
      this.log.warn(`the notifier for ${b?.drv} is gone without a word; treating that build as finished`);
      this.onEvent({ ev: "done", id, drv: b?.drv ?? "", ok: false });
    }
  }

  finish(): void {
    this.exited = true;
    this.cont();
    this.endTurn();
    markRunning(this.sharedDir, this.pid);
    clearInterval(this.timer);
  }
}
