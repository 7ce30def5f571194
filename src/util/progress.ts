// Progress of copies, shown three ways: as Nix activities (`@nix` JSON lines, so Nix's own progress
// bar shows them when nsh runs as a hook), as one redrawn line on a terminal, or as JSON events.
// Formatting is pure; sinks only write. Updates are throttled so progress never costs throughput.

export interface Totals {
  paths: number;
  bytes: number;
}

export interface ProgressSink {
  begin(t: Totals, label: string): void;
  pathStart(path: string, bytes: number, from: string, to: string): void;
  bytes(path: string, n: number): void;
  pathDone(path: string, ok: boolean): void;
  end(ok: boolean): void;
}

/** Nix's activity and result types (logging.hh), as used by its JSON logger. */
export const ActivityType = { copyPath: 100, copyPaths: 103 } as const;
export const ResultType = { progress: 105, setExpected: 106 } as const;

export function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

export function progressLine(done: Totals, total: Totals, elapsedMs: number): string {
  const rate = elapsedMs > 0 ? (done.bytes / 1048576 / (elapsedMs / 1000)).toFixed(1) : "0.0";
  return `copied ${done.paths}/${total.paths} paths, ${mib(done.bytes)}/${mib(total.bytes)} (${rate} MiB/s)`;
}

class Counter {
  done: Totals = { paths: 0, bytes: 0 };
  total: Totals = { paths: 0, bytes: 0 };
  readonly perPath = new Map<string, { done: number; size: number; id: number }>();
  t0 = Date.now();
}

/** `@nix` lines on stderr: Nix parses them from a build hook and feeds its progress bar. */
export class NixActivitySink implements ProgressSink {
  private c = new Counter();
  private nextId: number;
  private parent = 0;
  private lastEmit = 0;

  constructor(
    private readonly write: (line: string) => void = (l) => process.stderr.write(l),
    idBase = (process.pid % 100000) * 1000,
  ) {
    // Activity ids only need to be unique within this process (nix-protocols.md §1.4).
    this.nextId = idBase + 1;
  }

  private emit(msg: Record<string, unknown>): void {
    this.write(`@nix ${JSON.stringify(msg)}\n`);
  }

  begin(t: Totals, label: string): void {
    this.c = new Counter();
    this.c.total = { ...t };
    this.parent = this.nextId++;
    this.emit({ action: "start", id: this.parent, level: 3, type: ActivityType.copyPaths, text: label, parent: 0, fields: [] });
    this.emit({ action: "result", id: this.parent, type: ResultType.progress, fields: [0, t.paths, 0, 0] });
  }

  pathStart(path: string, bytes: number, from: string, to: string): void {
    const id = this.nextId++;
    this.c.perPath.set(path, { done: 0, size: bytes, id });
    const text = `copying path '${path}' from '${from}' to '${to}'`;
    this.emit({ action: "start", id, level: 3, type: ActivityType.copyPath, text, parent: this.parent, fields: [path, from, to] });
  }

  bytes(path: string, n: number): void {
    const p = this.c.perPath.get(path);
    if (!p) return;
    p.done += n;
    const now = Date.now();
    if (now - this.lastEmit < 100 && p.done < p.size) return;
    this.lastEmit = now;
    this.emit({ action: "result", id: p.id, type: ResultType.progress, fields: [p.done, p.size, 0, 0] });
  }

  pathDone(path: string, ok: boolean): void {
    const p = this.c.perPath.get(path);
    if (!p) return;
    this.c.perPath.delete(path);
    if (ok) this.c.done.paths++;
    this.emit({ action: "result", id: p.id, type: ResultType.progress, fields: [p.size, p.size, 0, 0] });
    this.emit({ action: "stop", id: p.id });
    const fields = [this.c.done.paths, this.c.total.paths, this.c.perPath.size, ok ? 0 : 1];
    this.emit({ action: "result", id: this.parent, type: ResultType.progress, fields });
  }

  end(_ok?: boolean): void {
    if (this.parent) this.emit({ action: "stop", id: this.parent });
    this.parent = 0;
  }
}

/** One line on a terminal, redrawn at most ten times a second. */
export class TerminalSink implements ProgressSink {
  private c = new Counter();
  private last = 0;
  constructor(private readonly write: (s: string) => void = (s) => process.stderr.write(s)) {}
  begin(t: Totals): void {
    this.c = new Counter();
    this.c.total = { ...t };
  }
  pathStart(): void {}
  bytes(_path: string, n: number): void {
    this.c.done.bytes += n;
    this.draw(false);
  }
  pathDone(_path: string, ok: boolean): void {
    if (ok) this.c.done.paths++;
    this.draw(false);
  }
  end(_ok?: boolean): void {
    this.draw(true);
    this.write("\n");
  }
  private draw(force: boolean): void {
    const now = Date.now();
    if (!force && now - this.last < 100) return;
    this.last = now;
    this.write(`\r\x1b[K${progressLine(this.c.done, this.c.total, now - this.c.t0)}`);
  }
}

/** Machine-readable events, one JSON object per line. */
export class JsonSink implements ProgressSink {
  private last = 0;
  private readonly done = new Map<string, number>();
  constructor(private readonly write: (s: string) => void = (s) => process.stdout.write(s)) {}
  private ev(o: Record<string, unknown>): void {
    this.write(`${JSON.stringify(o)}\n`);
  }
  begin(t: Totals, label: string): void {
    this.ev({ event: "begin", label, paths: t.paths, bytes: t.bytes });
  }
  pathStart(path: string, bytes: number, from: string, to: string): void {
    this.done.set(path, 0);
    this.ev({ event: "path-start", path, bytes, from, to });
  }
  bytes(path: string, n: number): void {
    const d = (this.done.get(path) ?? 0) + n;
    this.done.set(path, d);
    const now = Date.now();
    if (now - this.last < 200) return;
    this.last = now;
    this.ev({ event: "progress", path, done: d });
  }
  pathDone(path: string, ok: boolean): void {
    this.ev({ event: "path-done", path, ok, bytes: this.done.get(path) ?? 0 });
    this.done.delete(path);
  }
  end(ok: boolean): void {
    this.ev({ event: "end", ok });
  }
}

export const nullSink: ProgressSink = { begin() {}, pathStart() {}, bytes() {}, pathDone() {}, end() {} };
