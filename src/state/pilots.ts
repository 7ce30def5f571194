// Idle pilot jobs (pilot-idle-time): a build's job whose agent stays after the build, waiting for
// the next build of the same shape. The table lists the idle ones only: a hook takes a pilot by
// deleting its row (so two hooks never share one), and puts it back once its build is over. A hook
// that dies holding a pilot never puts it back: its reaper cancels the job, or the agent leaves.
// The table is created here (CREATE IF NOT EXISTS), not by a migration: it only adds.
import type { Database } from "bun:sqlite";
import type { StateDb } from "./db.ts";

export interface PilotRow {
  /** the scheduler's endpoint (Scheduler.describe()) */
  endpoint: string;
  jobId: string;
  /** everything that shaped the job, hashed (hook/pilot-key.ts) */
  resourceKey: string;
  node: string;
  /** the job's directory on the cluster: where its agent listens */
  dir: string;
  agentPath: string;
  /** epoch ms when the job's time limit ends it; null: no limit known */
  endsAt: number | null;
  /** the job's whole time limit in ms; null: no limit known */
  limitMs: number | null;
  /** epoch ms until which the agent is sure to wait for another build */
  idleUntil: number;
  /** builds the job has served */
  builds: number;
}

function ensureTable(db: Database): void {
  db.run(`CREATE TABLE IF NOT EXISTS pilots (
    endpoint TEXT NOT NULL,
    job_id TEXT NOT NULL,
    resource_key TEXT NOT NULL,
    node TEXT NOT NULL,
    dir TEXT NOT NULL,
    agent_path TEXT NOT NULL,
    ends_at INTEGER,
    limit_ms INTEGER,
    idle_until INTEGER NOT NULL,
    builds INTEGER NOT NULL,
    PRIMARY KEY (endpoint, job_id)
  ) WITHOUT ROWID`);
}

/**
 * Pure: whether a build that may need `needMs` fits in what remains of the pilot's time. A build
 * that asks for no time limit (0) would get the job's whole default limit in a job of its own: it
 * takes a pilot only while at least half of that remains.
 */
export function pilotFits(p: Pick<PilotRow, "endsAt" | "limitMs">, needMs: number, nowMs: number, marginMs: number): boolean {
  if (p.endsAt === null) return true;
  const need = needMs > 0 ? needMs : (p.limitMs ?? 0) / 2;
  return p.endsAt - nowMs >= need + marginMs;
}

interface Raw {
  endpoint: string;
  job_id: string;
  resource_key: string;
  node: string;
  dir: string;
  agent_path: string;
  ends_at: number | null;
  limit_ms: number | null;
  idle_until: number;
  builds: number;
}

const fromRaw = (r: Raw): PilotRow => ({
  endpoint: r.endpoint, jobId: r.job_id, resourceKey: r.resource_key, node: r.node, dir: r.dir,
  agentPath: r.agent_path, endsAt: r.ends_at, limitMs: r.limit_ms, idleUntil: r.idle_until, builds: r.builds,
});

/**
 * Takes an idle pilot of this shape whose remaining time fits the build (the one idle longest
 * ago first: it would leave soonest), deleting its row; pilots past their idle time are forgotten.
 */
export function claimPilot(s: StateDb, endpoint: string, resourceKey: string, needMs: number, marginMs: number, nowMs = Date.now()): Promise<PilotRow | undefined> {
  return s.write("taking an idle pilot job", (db) => {
    ensureTable(db);
    db.run("DELETE FROM pilots WHERE idle_until <= ?", [nowMs]);
    const rows = db
      .query("SELECT * FROM pilots WHERE endpoint = ? AND resource_key = ? ORDER BY idle_until")
      .all(endpoint, resourceKey) as Raw[];
    const row = rows.map(fromRaw).find((r) => pilotFits(r, needMs, nowMs, marginMs));
    if (row) db.run("DELETE FROM pilots WHERE endpoint = ? AND job_id = ?", [endpoint, row.jobId]);
    return row;
  });
}

/** Lists the pilot as idle (again). */
export function offerPilot(s: StateDb, p: PilotRow): Promise<void> {
  return s.write("offering an idle pilot job", (db) => {
    ensureTable(db);
    db.run("INSERT OR REPLACE INTO pilots VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
      p.endpoint, p.jobId, p.resourceKey, p.node, p.dir, p.agentPath, p.endsAt, p.limitMs, p.idleUntil, p.builds,
    ]);
  });
}

/** The idle pilots listed (for tests and diagnostics). */
export function listPilots(s: StateDb): Promise<PilotRow[]> {
  return s.write("listing idle pilot jobs", (db) => {
    ensureTable(db);
    return (db.query("SELECT * FROM pilots ORDER BY idle_until").all() as Raw[]).map(fromRaw);
  });
}
