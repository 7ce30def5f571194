// slurm-native while slurmctld is down (killed after the shim was loaded). Expected: status and
// submit fail with a SchedulerError of kind "unreachable" carrying Slurm's words ("Unable to contact
// slurm controller"), after libslurm's own retries (bounded by MessageTimeout; no hang), and the
// process survives. libslurm's calls block the event loop meanwhile: the times are printed.
import { afterAll, beforeAll, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { SchedulerError } from "../../src/schedulers/scheduler.ts";
import { SlurmNativeScheduler } from "../../src/schedulers/slurm-native.ts";
import { ensureLibslurmDev } from "../lab/libslurm-dev.ts";
import { startSlurmLab, type SlurmLab } from "../lab/slurm.ts";

let lab: SlurmLab;
let cache: string;

beforeAll(async () => {
  await ensureLibslurmDev();
  cache = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-native-down-"));
  lab = await startSlurmLab({ name: "native-down" });
});

afterAll(async () => {
  await lab?.cleanup();
  fs.rmSync(cache, { recursive: true, force: true });
});

test("slurmctld down: status and submit fail as 'unreachable' with Slurm's message", async () => {
  const s = new SlurmNativeScheduler({ conf: lab.confFile, cacheDir: path.join(cache, "c") });
  await s.prepare();
  process.kill(lab.pids.slurmctld, "SIGKILL"); // this lab's own slurmctld
  const job = { name: "down", script: "#!/bin/sh\ntrue\n", workingDirectory: lab.jobsDir, environment: {} };
  for (const [what, call] of [["status", () => s.status("1")], ["submit", () => s.submit(job)]] as const) {
    const t0 = Date.now();
    let err: unknown;
    try {
      await call();
    } catch (e) {
      err = e;
    }
    console.log(`[slurm-native] ${what} with slurmctld down failed after ${Date.now() - t0} ms`);
    expect(err).toBeInstanceOf(SchedulerError);
    expect((err as SchedulerError).kind).toBe("unreachable");
    expect((err as Error).message).toContain("Unable to contact slurm controller");
  }
}, 180_000);
