// slurm-native-user names another user while nsh does not run as root. Expected: Slurm refuses
// (only root or SlurmUser may submit for someone else) and the error says so: the setting, the
// rule and nsh's uid; no job is left. The same nsh without the setting submits as itself.
// nsh runs here as `nobody` (setpriv) with its own shim cache, against the real Slurm 22.05 lab.
import { afterAll, beforeAll, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ensureLibslurmDev, needsHostSlurm } from "../lab/libslurm-dev.ts";
import { startSlurmLab, type SlurmLab } from "../lab/slurm.ts";

const NOBODY = 65534;
let lab: SlurmLab;
let home: string;

// The scheduler as a non-root process: it prints "submitted ID" or "ERR message".
const program = `
import { SlurmNativeScheduler } from ${JSON.stringify(path.resolve(import.meta.dir, "../../src/schedulers/slurm-native.ts"))};
const s = new SlurmNativeScheduler({ conf: process.env.SLURM_CONF, user: process.env.RUN_AS, cacheDir: process.env.CACHE });
try {
  const h = await s.submit({ name: process.env.NAME, script: "#!/bin/sh\\nid -un\\n", workingDirectory: process.env.JOBS, environment: {} });
  console.log("submitted", h.id);
} catch (e) { console.log("ERR", e.message); }
`;

const hostOnly = needsHostSlurm("slurm-native-foreign-user.test.ts");

beforeAll(async () => {
  if (hostOnly) return;
  await ensureLibslurmDev();
  lab = await startSlurmLab({ name: "native-user" });
  home = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-native-nobody-"));
  fs.writeFileSync(path.join(home, "submit.ts"), program);
  fs.chmodSync(home, 0o755);
  fs.chownSync(home, NOBODY, NOBODY);
});

afterAll(async () => {
  if (hostOnly) return;
  await lab?.cleanup();
  fs.rmSync(home, { recursive: true, force: true });
});

function asNobody(runAs: string, name: string): string {
  const p = Bun.spawnSync(["setpriv", `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", process.execPath, path.join(home, "submit.ts")], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home, SLURM_CONF: lab.confFile, RUN_AS: runAs, CACHE: path.join(home, "cache"), JOBS: lab.jobsDir, NAME: name },
    timeout: 120_000,
  });
  return `${p.stdout.toString()}${p.stderr.toString()}`.trim();
}

test.skipIf(hostOnly)("a non-root nsh naming another user: a clear error and no job; without the setting it submits as itself", async () => {
  const refused = asNobody("daemon", "foreign");
  expect(refused).toContain("ERR slurm-native: slurm-native-user = daemon, but only root (or Slurm's SlurmUser) may submit a job for another user");
  expect(refused).toContain(`uid ${NOBODY}`);
  expect((await lab.run(["squeue", "-h", "-t", "all", "-n", "foreign", "-o", "%i"])).stdout.trim()).toBe("");
  const own = asNobody("", "own");
  expect(own).toMatch(/submitted \d+/);
  const id = /submitted (\d+)/.exec(own)![1]!;
  expect((await lab.run(["scontrol", "show", "job", id])).stdout).toContain("UserId=nobody(65534)");
});
