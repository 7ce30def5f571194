// pbs: the PBS server cannot be reached (nothing listens at pbs-host:pbs-port). Expected: prepare,
// submit and statusMany fail promptly with SchedulerError kind "unreachable" naming host:port and
// where it came from (pbs-host/pbs-port, pbs.conf); doctor says the same; nothing hangs.
import { afterAll, beforeAll, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PbsScheduler } from "../../src/schedulers/pbs.ts";
import { SchedulerError } from "../../src/schedulers/scheduler.ts";
import { ensurePbsBuilt } from "../lab/pbs-build.ts";
import { freePort } from "../lab/slurm-host.ts";

let dir: string;
let sched: PbsScheduler;
let port: number;

beforeAll(async () => {
  const { exec } = await ensurePbsBuilt();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-pbs-unreach-"));
  const confFile = path.join(dir, "pbs.conf");
  fs.writeFileSync(confFile, `PBS_SERVER=127.0.0.1\nPBS_EXEC=${exec}\nPBS_HOME=${dir}\n`);
  port = await freePort("127.0.0.1");
  sched = new PbsScheduler({
    host: "127.0.0.1", port, scriptDir: path.join(dir, "state"), env: { PBS_CONF_FILE: confFile }, requestTimeoutMs: 60_000,
  });
}, 60 * 60_000);

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function failure(p: Promise<unknown>): Promise<SchedulerError> {
  const e = await p.then(() => null, (err: unknown) => err);
  expect(e).toBeInstanceOf(SchedulerError);
  return e as SchedulerError;
}

test("prepare, submit and statusMany: unreachable, naming host:port", async () => {
  for (const call of [
    () => sched.prepare(),
    () => sched.submit({ name: "x", script: "#!/bin/sh\n", workingDirectory: "/", environment: {} }),
    () => sched.statusMany(["1.x", "2.x"]),
  ]) {
    const e = await failure(call());
    expect(e.kind).toBe("unreachable");
    expect(e.message).toContain(`cannot reach the PBS server at 127.0.0.1:${port}`);
    expect(e.message).toContain("pbs-host/pbs-port");
    expect(e.message).toEndWith("connection refused");
  }
});

test("doctor says the server does not answer", async () => {
  const checks = await sched.doctor();
  const server = checks.find((c) => c.what === "PBS server");
  expect(server?.ok).toBe(false);
  expect(server?.detail).toContain(`127.0.0.1:${port}`);
});
