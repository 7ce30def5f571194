// pbs: nsh runs as root (the hook under nix-daemon) and pbs-user is unset. PBS refuses root's jobs by
// default. Expected: submit fails with an "auth" SchedulerError carrying PBS's reason and telling to
// set pbs-user, and no job is left; doctor flags "jobs run as"; with pbs-user set, the same submit works
// (also through the built binary's `nsh __pbs-client`, so run `bun build.ts` first).
import { afterAll, beforeAll, expect, test } from "bun:test";
import * as path from "node:path";
import { PbsScheduler } from "../../src/schedulers/pbs.ts";
import { SchedulerError } from "../../src/schedulers/scheduler.ts";
import { startPbsLab, type PbsLab } from "../lab/pbs.ts";

let lab: PbsLab;
const job = () => ({
  name: "rootjob", script: "#!/bin/sh\ntrue\n", workingDirectory: lab.jobsDir, environment: {}, stdout: "/dev/null",
});
const make = (user: string, clientCommand?: string[]) =>
  new PbsScheduler({ user, scriptDir: path.join(lab.root, "nsh-state"), env: { PBS_CONF_FILE: lab.confFile }, clientCommand });
// the built binary (./node_modules/.bin/bun build.ts): its `nsh __pbs-client` is what a site runs
const NSH = path.join(import.meta.dir, "..", "..", "dist", "nsh");

beforeAll(async () => {
  lab = await startPbsLab();
}, 60 * 60_000);
afterAll(async () => {
  await lab?.stop();
});

test("root without pbs-user: refused with PBS's reason and what to set; no job left", async () => {
  expect(process.getuid?.()).toBe(0);
  const e = await make("").submit(job()).then(() => null, (err: unknown) => err);
  expect(e).toBeInstanceOf(SchedulerError);
  expect((e as SchedulerError).kind).toBe("auth");
  expect((e as SchedulerError).message).toContain("Bad UID for job execution");
  expect((e as SchedulerError).message).toContain("set pbs-user");
  const left = await lab.run(["qselect", "-x"], { asRoot: true });
  expect(left.stdout.trim()).toBe("");
  const runsAs = (await make("").doctor()).find((c) => c.what === "jobs run as");
  expect(runsAs?.ok).toBe(false);
}, 180_000);

test("the same submit with pbs-user set is accepted, through the built nsh's __pbs-client too", async () => {
  for (const client of [undefined, [NSH, "__pbs-client"]]) {
    const { id } = await make(lab.user.name, client).submit(job());
    expect((await lab.qstat(id))?.Job_Owner).toStartWith(`${lab.user.name}@`);
  }
}, 180_000);
