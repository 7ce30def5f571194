// pbs-cli on a machine without (some of) OpenPBS's tools, or with Slurm's torque wrapper as qsub:
// prepare() and submit() fail with a config error naming each missing tool and where nsh looked,
// before anything is submitted; doctor() lists every tool as found or not and flags Slurm's qsub.
// No lab.
import { afterAll, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PbsCliScheduler } from "../../src/schedulers/pbs-cli.ts";
import { thrown } from "./thrown.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-pbs-cli-missing-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));


test("pbs-bin-dir with only qsub: prepare and submit name qstat, qdel and the directory", async () => {
  const bin = path.join(dir, "only-qsub");
  fs.mkdirSync(bin);
  fs.writeFileSync(path.join(bin, "qsub"), "#!/bin/sh\nexit 1\n", { mode: 0o755 });
  const e = await thrown(new PbsCliScheduler({ binDir: bin }).prepare());
  expect(e.kind).toBe("config");
  expect(e.message).toContain(`qstat, qdel not found in pbs-bin-dir ${bin}`);
  const job = { name: "x", script: "#!/bin/sh\n", workingDirectory: "/", environment: {} };
  expect((await thrown(new PbsCliScheduler({ binDir: bin }).submit(job))).message).toContain("qstat, qdel not found");
  const checks = await new PbsCliScheduler({ binDir: bin }).doctor();
  expect(checks.filter((c) => !c.ok).map((c) => c.what)).toEqual(["qstat", "qdel", "PBS server answers qstat -B"]);
});

test("no pbs.conf and no tools on PATH: all three named, with the PATH searched", async () => {
  const env = { PATH: `${dir}/nothing:/nonexistent`, PBS_CONF_FILE: path.join(dir, "no-pbs.conf") };
  const e = await thrown(new PbsCliScheduler({ env }).prepare());
  expect(e.message).toContain(`qsub, qstat, qdel not found on PATH (${dir}/nothing:/nonexistent)`);
});

test("pbs.conf's PBS_EXEC names the directory searched", async () => {
  const conf = path.join(dir, "pbs.conf");
  fs.writeFileSync(conf, `PBS_EXEC=${dir}/opt-pbs\nPBS_SERVER=nowhere\n`);
  const e = await thrown(new PbsCliScheduler({ env: { PBS_CONF_FILE: conf, PATH: "/usr/bin:/bin" } }).prepare());
  expect(e.message).toContain(`qsub, qstat, qdel not found in PBS_EXEC/bin of pbs.conf ${dir}/opt-pbs/bin`);
});

test("Slurm's torque wrapper as qsub: doctor says so and names pbs-bin-dir", async () => {
  const bin = path.join(dir, "torque");
  fs.mkdirSync(bin);
  const wrapper = "#!/usr/bin/perl -w\n# qsub wrapper for Slurm (slurm-wlm-torque)\nexit 1;\n";
  for (const t of ["qsub", "qstat", "qdel"]) fs.writeFileSync(path.join(bin, t), wrapper, { mode: 0o755 });
  const checks = await new PbsCliScheduler({ binDir: bin }).doctor();
  const qsub = checks.find((c) => c.what === "qsub is PBS's");
  expect(qsub?.ok).toBe(false);
  expect(qsub?.detail).toContain("Slurm's torque wrapper");
  expect(qsub?.detail).toContain("pbs-bin-dir");
});
