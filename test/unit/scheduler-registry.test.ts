// Expected: a scheduler is one module. job-scheduler names a descriptor in the registry that says
// the scheduler's per-derivation attribute, the machine Nix shows, and what its setup lacks, all
// without loading the scheduler's code: a hook that declines a build, or checks its readiness,
// loads no scheduler; creating one loads it. A scheduler nsh.conf knows but this nsh lacks is a
// clear config error naming the ones it has. Outside src/schedulers nothing names a concrete
// scheduler, so adding one touches the registry and its own files only. The defaults of the
// optional members (statusMany, cancelMany, doctor) fall back to the one-job calls.
import { expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { defaultNshConfig, type NshConfig } from "../../src/config/nsh-conf.ts";
import { DEFAULT_ALLOWED_PARAMS } from "../../src/hook/derivation-params.ts";
import { availableSchedulers, createScheduler, loginHostOf, machineName, paramsAttrOf, schedulerModule } from "../../src/schedulers/registry.ts";
import { cancelEach, doctorChecks, type JobStatus, type Scheduler, SchedulerError, statusOfMany } from "../../src/schedulers/scheduler.ts";

const conf = (over: Partial<NshConfig>): NshConfig => ({ ...defaultNshConfig(), ...over });

test.each([
  [{ "job-scheduler": "slurm", "slurm-api-host": "login1" }, "slurm:login1", "extraSlurmParams"],
  [{ "job-scheduler": "slurm-native" }, "slurm-native", "slurmNativeConstraints"],
  [{ "job-scheduler": "slurm-cli" }, "slurm-cli", "extraSlurmParams"],
  [{ "job-scheduler": "pbs", "pbs-host": "pbs1" }, "pbs:pbs1", "pbsResources"],
  [{ "job-scheduler": "pbs" }, "pbs", "pbsResources"],
  [{ "job-scheduler": "pbs-cli", "pbs-host": "pbs1" }, "pbs-cli:pbs1", "pbsResources"],
] as [Partial<NshConfig>, string, string][])("%j: machine %s, attribute %s", (over, machine, attr) => {
  const c = conf(over);
  expect(machineName(c)).toBe(machine);
  expect(paramsAttrOf(c["job-scheduler"])).toBe(attr);
  // every scheduler's attribute is checked against a built-in allow-list
  expect(DEFAULT_ALLOWED_PARAMS[attr]?.length).toBeGreaterThan(0);
});

test("login-host, else the scheduler's own host", () => {
  expect(loginHostOf(conf({ "slurm-api-host": "rest1" }))).toBe("rest1");
  expect(loginHostOf(conf({ "slurm-api-host": "rest1", "login-host": "me@login2" }))).toBe("me@login2");
  // the tools and libslurm work where slurm.conf is: the hook runs on the login node itself
  for (const kind of ["slurm-cli", "slurm-native"] as const) {
    expect(loginHostOf(conf({ "job-scheduler": kind, "slurm-api-host": "rest1" }))).toBe("localhost");
    expect(loginHostOf(conf({ "job-scheduler": kind, "login-host": "login2" }))).toBe("login2");
  }
});

test("every job-scheduler value nsh.conf accepts has a descriptor, and this nsh has all five", () => {
  const kinds = ["slurm", "slurm-native", "slurm-cli", "pbs", "pbs-cli"] as const;
  for (const kind of kinds) expect(schedulerModule(kind)?.kind).toBe(kind);
  expect([...availableSchedulers()].sort()).toEqual([...kinds].sort());
});

test("pbs and pbs-cli: the login host defaults to pbs-host; nothing beyond the state dir is missing", () => {
  for (const kind of ["pbs", "pbs-cli"] as const) {
    expect(loginHostOf(conf({ "job-scheduler": kind, "pbs-host": "pbs1" }))).toBe("pbs1");
    expect(loginHostOf(conf({ "job-scheduler": kind, "pbs-host": "pbs1", "login-host": "me@login2" }))).toBe("me@login2");
    expect(schedulerModule(kind)?.missingSetup?.(conf({ "job-scheduler": kind }), {}, () => false) ?? []).toEqual([]);
  }
});

test("creating pbs or pbs-cli loads its module, and nothing is asked of the server yet", async () => {
  for (const kind of ["pbs", "pbs-cli"] as const) {
    const s = await createScheduler(conf({ "job-scheduler": kind, "pbs-host": "pbs1" }), {});
    expect(s.kind).toBe(kind);
    expect(s.describe()).toContain("pbs1");
  }
});

test("a scheduler this nsh lacks: a config error naming the ones it has", async () => {
  const lacking = "lsf" as NshConfig["job-scheduler"]; // nsh.conf's enum refuses it; a stale config object may not
  const err = await createScheduler(conf({ "job-scheduler": lacking }), {}).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(SchedulerError);
  expect((err as SchedulerError).kind).toBe("config");
  expect((err as Error).message).toContain("lsf is not available");
  expect((err as Error).message).toContain("slurm-cli");
});

test("declining a build, or checking the setup, loads no scheduler; creating one does", async () => {
  // A fresh process: what the hook's modules load by themselves.
  const script = `
    const { machineName } = await import("./src/schedulers/registry.ts");
    const { missingSetup } = await import("./src/hook/readiness.ts");
    await import("./src/hook/runner.ts");
    const { defaultNshConfig } = await import("./src/config/nsh-conf.ts");
    const c = { ...defaultNshConfig(), "slurm-state-dir": "/s", "slurm-jwt-token": "x.y.z" };
    machineName(c);
    missingSetup({ conf: c, env: {}, files: ["/f"], searched: ["/f"], readable: () => true });
    const loaded = () => Object.keys(require.cache).some((k) => k.endsWith("/schedulers/slurm-rest.ts"));
    const before = loaded();
    const { createScheduler } = await import("./src/schedulers/registry.ts");
    await createScheduler(c, {}, { log: () => {} });
    console.log(JSON.stringify({ before, after: loaded() }));
  `;
  const root = path.join(import.meta.dir, "..", "..");
  const p = Bun.spawnSync([process.execPath, "-e", script], { cwd: root, stdout: "pipe", stderr: "pipe" });
  expect(p.stderr.toString()).toBe("");
  expect(JSON.parse(p.stdout.toString())).toEqual({ before: false, after: true });
});

test("outside src/schedulers nothing names a concrete scheduler", () => {
  const root = path.join(import.meta.dir, "..", "..", "src");
  const concrete = /(case|===|!==)\s*"(slurm|slurm-native|slurm-cli|pbs|pbs-cli)"|SlurmRest|slurm-rest|SlurmNative|SlurmCli|Pbs\w*Scheduler/;
  const found: string[] = [];
  for (const file of new Bun.Glob("**/*.ts").scanSync(root)) {
    if (file.startsWith("schedulers/")) continue;
    fs.readFileSync(path.join(root, file), "utf8").split("\n").forEach((line, i) => {
      if (concrete.test(line)) found.push(`${file}:${i + 1}: ${line.trim()}`);
    });
  }
  expect(found).toEqual([]);
});

const status = (id: string): JobStatus => ({ id, state: "running", rawState: ["RUNNING"], reason: null, nodes: "n1", exitCode: null, signal: null, startTime: 1, endTime: null });

function oneByOne(failing: string[] = []): Scheduler & { calls: string[] } {
  const calls: string[] = [];
  return {
    kind: "slurm",
    calls,
    submit: async () => ({ id: "1" }),
    status: async (id) => (calls.push(`status ${id}`), status(id)),
    cancel: async (id) => {
      calls.push(`cancel ${id}`);
      if (failing.includes(id)) throw new Error(`job ${id} refused`);
    },
    describe: () => "one by one",
  };
}

test("without statusMany: the status of each job in turn", async () => {
  const s = oneByOne();
  const m = await statusOfMany(s, ["1", "2"]);
  expect([...m.keys()]).toEqual(["1", "2"]);
  expect(s.calls).toEqual(["status 1", "status 2"]);
});

test("cancelEach: one cancelMany call; when it fails, one by one to say which job failed", async () => {
  const batched = { ...oneByOne(), cancelMany: async (ids: string[]) => void batched.calls.push(`cancelMany ${ids.join(",")}`) };
  expect((await cancelEach(batched, ["1", "2"])).size).toBe(0);
  expect(batched.calls).toEqual(["cancelMany 1,2"]);
  const base = oneByOne(["2"]);
  const refusing = { ...base, cancelMany: async () => Promise.reject(new Error("batch refused")) };
  const failed = await cancelEach(refusing, ["1", "2", "3"]);
  expect([...failed.keys()]).toEqual(["2"]);
  expect(failed.get("2")?.message).toBe("job 2 refused");
  expect(base.calls).toEqual(["cancel 1", "cancel 2", "cancel 3"]);
});

test("without doctor: the scheduler is prepared and described", async () => {
  let prepared = false;
  const s = { ...oneByOne(), prepare: async () => void (prepared = true) };
  expect(await doctorChecks(s)).toEqual([{ ok: true, what: "slurm", detail: "one by one" }]);
  expect(prepared).toBe(true);
});
