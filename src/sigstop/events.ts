// Pure: the messages notifiers send the wrapper through the FIFO, and the stop/continue decision.
// One JSON object per line; a line stays far below PIPE_BUF, so each write is atomic.

export type BuildEvent =
  | { ev: "start"; id: string; drv: string; reply: string; notifier: number }
  | { ev: "done"; id: string; drv: string; ok: boolean };

export function encodeEvent(e: BuildEvent): string {
  const line = `${JSON.stringify(e)}\n`;
  if (Buffer.byteLength(line) > 4000) throw new Error(`event for ${e.drv} is too long for one atomic FIFO write`);
  return line;
}

/** Parses one line; returns an error message instead of throwing so a bad writer cannot kill the wrapper. */
export function decodeEvent(line: string): BuildEvent | string {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return `ignoring a malformed event line: ${line.slice(0, 120)}`;
  }
  const o = v as Record<string, unknown>;
  if (o && typeof o.id === "string" && typeof o.drv === "string") {
    if (o.ev === "start" && typeof o.reply === "string" && typeof o.notifier === "number")
      return { ev: "start", id: o.id, drv: o.drv, reply: o.reply, notifier: o.notifier };
    if (o.ev === "done" && typeof o.ok === "boolean") return { ev: "done", id: o.id, drv: o.drv, ok: o.ok };
  }
  return `ignoring an event of unknown shape: ${line.slice(0, 120)}`;
}

export interface ActiveBuild {
  drv: string;
  notifier: number;
  since: number;
}

export type Action = "stop" | "resume" | "none";

/** Tracks builds nix waits for: stop on the first, resume after the last. */
export class BuildTracker {
  readonly active = new Map<string, ActiveBuild>();
  readonly seen = new Set<string>();
  failed = 0;

  onEvent(e: BuildEvent, now: number): Action {
    if (e.ev === "start") {
      if (this.active.has(e.id)) return "none";
      this.seen.add(e.drv);
      this.active.set(e.id, { drv: e.drv, notifier: e.notifier, since: now });
      return this.active.size === 1 ? "stop" : "none";
    }
    if (!this.active.delete(e.id)) return "none"; // duplicate or unknown: already handled
    if (!e.ok) this.failed++;
    return this.active.size === 0 ? "resume" : "none";
  }

  /** Ids of builds whose notifier is gone without saying done: treated as finished. */
  vanished(isAlive: (pid: number) => boolean): string[] {
    return [...this.active].filter(([, b]) => !isAlive(b.notifier)).map(([id]) => id);
  }
}

/** Splits a byte stream into lines, keeping the unfinished tail. */
export class LineSplitter {
  private tail = "";
  push(chunk: string): string[] {
    const parts = (this.tail + chunk).split("\n");
    this.tail = parts.pop() ?? "";
    return parts.filter((l) => l.length > 0);
  }
}
