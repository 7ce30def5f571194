// What nsh remembers about each job it submitted, for `nsh jobs` and `nsh cancel`: one JSON file per
// job in the local state directory, rewritten as the job moves through its phases.
import fs from "node:fs";
import path from "node:path";

export type Phase = "queue" | "upload" | "build" | "download";

export interface JobRecord {
  key: string;
  drv: string;
  scheduler: string;
  jobId?: string;
  node?: string;
  state: "submitting" | "pending" | "running" | "succeeded" | "failed" | "cancelled";
  submittedAt: number;
  /** Seconds each phase took, as it finishes. */
  phases: Partial<Record<Phase, number>>;
  /** When each step of the hook ended (epoch ms; `hook` is the process start): where one build's time goes. */
  marks?: Record<string, number>;
  message?: string;
  hookPid: number;
}

export class JobLog {
  private readonly file: string;
  private phaseStart = Date.now();
  constructor(
    stateDir: string,
    readonly record: JobRecord,
  ) {
    const dir = path.join(stateDir, "jobs");
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.file = path.join(dir, `${record.key}.json`);
    this.save();
  }

  update(patch: Partial<JobRecord>): void {
    Object.assign(this.record, patch);
    this.save();
  }

  /** Notes when a step ended; written with the next update (no extra file write per step). */
  mark(step: string): void {
    (this.record.marks ??= {})[step] = Date.now();
  }

  /** Ends the running phase (timed since the previous one ended) and starts the next. */
  phaseDone(phase: Phase): void {
    const now = Date.now();
    this.record.phases[phase] = (now - this.phaseStart) / 1000;
    this.phaseStart = now;
    this.save();
  }

  private save(): void {
    try {
      fs.writeFileSync(`${this.file}.tmp`, JSON.stringify(this.record));
      fs.renameSync(`${this.file}.tmp`, this.file);
    } catch {}
  }
}

export function readJobRecords(stateDir: string): JobRecord[] {
  const dir = path.join(stateDir, "jobs");
  let names: string[] = [];
  try {
    names = fs.readdirSync(dir).filter((n) => n.endsWith(".json"));
  } catch {}
  const out: JobRecord[] = [];
  for (const n of names) {
    try {
      out.push(JSON.parse(fs.readFileSync(path.join(dir, n), "utf8")) as JobRecord);
    } catch {}
  }
  return out.sort((a, b) => a.submittedAt - b.submittedAt);
}

/** Pure: the table `nsh jobs` prints. */
export function formatJobs(records: readonly JobRecord[], now = Date.now()): string {
  if (records.length === 0) return "no nsh jobs recorded\n";
  const rows = records.map((r) => [
    r.jobId ?? "-",
    r.state,
    r.node ?? "-",
    `${Math.round((now - r.submittedAt) / 1000)}s ago`,
    (["queue", "upload", "build", "download"] as const).map((p) => (r.phases[p] === undefined ? "-" : `${r.phases[p]!.toFixed(1)}`)).join("/"),
    r.drv.replace(/^.*\/[0-9a-z]{32}-/, ""),
  ]);
  const head = ["JOB", "STATE", "NODE", "SUBMITTED", "QUEUE/UPLOAD/BUILD/DOWNLOAD s", "DERIVATION"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [head, ...rows].map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n") + "\n";
}

/**
 * Patches a record another process wrote (the reaper, after the hook died); a record that already
 * says how the job ended is left alone.
 */
export function markRecord(stateDir: string, key: string, patch: Partial<JobRecord>): void {
  const file = path.join(stateDir, "jobs", `${key}.json`);
  try {
    const rec = JSON.parse(fs.readFileSync(file, "utf8")) as JobRecord;
    if (rec.state === "succeeded" || rec.state === "failed" || rec.state === "cancelled") return;
    fs.writeFileSync(`${file}.tmp`, JSON.stringify({ ...rec, ...patch }));
    fs.renameSync(`${file}.tmp`, file);
  } catch {}
}
