// slurm-native while slurmctld is down (killed after the shim was loaded). Expected: status and
// submit fail with a SchedulerError of kind "unreachable" carrying Slurm's words ("Unable to contact
// slurm controller"), after libslurm's own retries (bounded by MessageTimeout; no hang), and the
// process survives. libslurm's calls block the event loop meanwhile: the times are printed. The
// scheduler runs in a process of its own: libslurm reads one slurm.conf per process, and other test
// files in the same `bun test` run load theirs.
import { afterAll, beforeAll, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ensureLibslurmDev } from "../lab/libslurm-dev.ts";
import { startSlurmLab, type SlurmLab } from "../lab/slurm.ts";

const src = (f: string) => JSON.stringify(path.resolve(import.meta.dir, "../../src/schedulers", f));
// Prints one JSON line per call: what it threw and after how long.
const program = `
import { SlurmNativeScheduler } from ${src("slurm-native.ts")};
import { SchedulerError } from ${src("scheduler.ts")};
const s = new SlurmNativeScheduler({ conf: process.env.SLURM_CONF, cacheDir: process.env.CACHE });
await s.prepare();
process.kill(Number(process.env.CTLD), "SIGKILL"); // the lab's own slurmctld
const job = { name: "down", script: "#!/bin/sh\\ntrue\\n", workingDirectory: process.env.JOBS, environment: {} };
for (const [what, call] of [["status", () => s.status("1")], ["submit", () => s.submit(job)]]) {
  const t0 = Date.now();
  const err = await call().then(() => null, (e) => e);
  const kind = err instanceof SchedulerError ? err.kind : String(err);
  console.log(JSON.stringify({ what, ms: Date.now() - t0, kind, message: err?.message ?? "" }));
}
`;

let lab: SlurmLab;
let dir: string;

beforeAll(async () => {
  await ensureLibslurmDev();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-native-down-"));
  fs.writeFileSync(path.join(dir, "case.ts"), program);
  lab = await startSlurmLab({ name: "native-down" });
});

afterAll(async () => {
  await lab?.cleanup();
  fs.rmSync(dir, { recursive: true, force: true });
});

test("slurmctld down: status and submit fail as 'unreachable' with Slurm's message", () => {
  const env = { ...process.env, SLURM_CONF: lab.confFile, CACHE: path.join(dir, "c"), JOBS: lab.jobsDir, CTLD: String(lab.pids.slurmctld) };
  const p = Bun.spawnSync([process.execPath, path.join(dir, "case.ts")], { env, timeout: 150_000 });
  const lines = p.stdout.toString().trim().split("\n").filter((l) => l.startsWith("{"));
  if (p.exitCode !== 0 || lines.length !== 2) console.log(p.stdout.toString(), p.stderr.toString());
  expect(p.exitCode).toBe(0); // the process survives
  expect(lines.length).toBe(2);
  for (const r of lines.map((l) => JSON.parse(l))) {
    console.log(`[slurm-native] ${r.what} with slurmctld down failed after ${r.ms} ms`);
    expect(r.kind).toBe("unreachable");
    expect(r.message).toContain("Unable to contact slurm controller");
  }
}, 180_000);
