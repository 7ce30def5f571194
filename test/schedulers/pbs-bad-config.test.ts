// pbs: bad setup or bad per-derivation input. Expected: a pbsResources value that is not a string is
// refused with a message naming the resource, before any IFL call (no client process starts, so no
// job); a pbs-lib that does not exist, a pbs.conf without PBS_SERVER, and an unknown pbs-user are
// each a "config" SchedulerError naming the setting to fix.
import { afterAll, beforeAll, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { type PbsOptions, PbsScheduler } from "../../src/schedulers/pbs.ts";
import { SchedulerError } from "../../src/schedulers/scheduler.ts";

let dir: string;
let marker: string;
const job = { name: "x", script: "#!/bin/sh\n", workingDirectory: "/", environment: {} };

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-pbs-conf-"));
  marker = path.join(dir, "client-started");
  fs.writeFileSync(path.join(dir, "libpbs.so.0"), "");
  fs.writeFileSync(path.join(dir, "pbs.conf"), `PBS_EXEC=${dir}\n`);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const make = (o: Partial<PbsOptions> = {}): PbsScheduler =>
  new PbsScheduler({
    host: "127.0.0.1", lib: path.join(dir, "libpbs.so.0"), scriptDir: dir,
    env: { PBS_CONF_FILE: path.join(dir, "pbs.conf") },
    clientCommand: ["/bin/sh", "-c", `touch ${marker}`], ...o,
  });

async function failure(p: Promise<unknown>): Promise<SchedulerError> {
  const e = await p.then(() => null, (err: unknown) => err);
  expect(e).toBeInstanceOf(SchedulerError);
  return e as SchedulerError;
}

test("a pbsResources value that is not a string: refused by name, no IFL call", async () => {
  const e = await failure(make().submit({ ...job, extra: { ncpus: 4, mem: "1gb" } }));
  expect(e.kind).toBe("rejected");
  expect(e.message).toContain("pbsResources: ncpus must be a string");
  expect(e.message).toContain("nothing was submitted");
  expect(fs.existsSync(marker)).toBe(false);
});

test("pbs-lib that does not exist", async () => {
  const e = await failure(make({ lib: "/nonexistent/libpbs.so.0" }).prepare());
  expect([e.kind, e.message]).toEqual(["config", "pbs: libpbs /nonexistent/libpbs.so.0 does not exist; set pbs-lib"]);
});

test("no pbs-host and no PBS_SERVER in pbs.conf", async () => {
  const e = await failure(make({ host: "" }).prepare());
  expect(e.kind).toBe("config");
  expect(e.message).toContain(`${path.join(dir, "pbs.conf")} has no PBS_SERVER and pbs-host is unset`);
});

test("an unknown pbs-user", async () => {
  const e = await failure(make({ user: "no-such-user-nsh" }).prepare());
  expect([e.kind, e.message]).toEqual(["config", "pbs-user 'no-such-user-nsh': no such user (getent passwd found nothing)"]);
});
