// slurm-cli on a machine without (some of) Slurm's tools, or without a slurm.conf: prepare() and
// submit() fail with a config error naming each missing tool and where nsh looked (or naming
// slurm-conf), before anything is submitted; doctor() lists every tool as found or not. No lab.
import { afterAll, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { SlurmCliScheduler } from "../../src/schedulers/slurm-cli.ts";
import { thrown } from "./thrown.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-slurm-cli-missing-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));


test("slurm-bin-dir without squeue, sacct, scancel: prepare names them and the directory", async () => {
  fs.symlinkSync(Bun.which("sbatch") ?? "/usr/bin/sbatch", path.join(dir, "sbatch"));
  const e = await thrown(new SlurmCliScheduler({ binDir: dir }).prepare());
  expect(e.kind).toBe("config");
  expect(e.message).toContain(`squeue, sacct, scancel not found in slurm-bin-dir ${dir}`);
  const job = { name: "x", script: "#!/bin/sh\n", workingDirectory: "/", environment: {} };
  const submit = await thrown(new SlurmCliScheduler({ binDir: dir }).submit(job));
  expect(submit.message).toContain("squeue, sacct, scancel not found");
  const checks = await new SlurmCliScheduler({ binDir: dir }).doctor();
  expect(checks.filter((c) => !c.ok).map((c) => c.what)).toEqual(["squeue", "sacct", "scancel", "sbatch --version"]);
});

test("no Slurm tools on PATH: all four named", async () => {
  const e = await thrown(new SlurmCliScheduler({ env: { PATH: dir + "/nothing:/nonexistent" } }).prepare());
  expect(e.message).toContain("sbatch, squeue, sacct, scancel not found on PATH (");
});

test("tools present but slurm-conf names no file: said at once (Slurm's tools would retry it for 60 s)", async () => {
  const conf = path.join(dir, "no-such-slurm.conf");
  const e = await thrown(new SlurmCliScheduler({ slurmConf: conf, env: { PATH: "/usr/bin:/bin" } }).prepare());
  expect(e.kind).toBe("config");
  expect(e.message).toContain(`slurm-conf ${conf} does not exist`);
});

const noSystemConf = !fs.existsSync("/etc/slurm/slurm.conf");
test.if(noSystemConf)("no slurm.conf anywhere (no slurm-conf, no configless DNS): sbatch's failure names slurm-conf", async () => {
  const e = await thrown(new SlurmCliScheduler({ env: { PATH: "/usr/bin:/bin" } }).prepare());
  expect(e.kind).toBe("config");
  expect(e.message).toContain("Could not establish a configuration source");
  expect(e.message).toContain("set slurm-conf?");
});
