// Expected: the pure parts of `npm run bench schedulers` (bench/schedulers-*.ts) choose each
// backend's nsh.conf lines without leaving a setting twice, sort every kind of scheduler call record
// (HTTP requests to slurmrestd, tool wrapper log lines, NSH_FFI_TRACE lines) into submits, status
// queries, cancels and other calls, and read submit → running from nsh's job records; the counting
// wrappers pass everything through while they count; the report leaves warm-ups and failed runs out
// of its numbers. The benchmark itself is not run here.
import { expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  type CallKind, classifyCliLine, classifyFfiLine, classifyRest, confOverrides, countCalls, hookWrapper,
  parseBackends, parseJobLines, parseSlurmctldLog, recordsOfRun, SCHED_BACKENDS, submitToRunning, toolWrapper,
  type SchedBackend, withOverrides,
} from "../../bench/schedulers-calls.ts";
import { buildArgv, expectedOutput, parseCases, reportTables, rotate, type Run } from "../../bench/schedulers-report.ts";

test("NSH_BENCH_BACKENDS: empty means all five, a list keeps its order, a wrong name is named", () => {
  expect(parseBackends(undefined)).toEqual([...SCHED_BACKENDS]);
  expect(parseBackends(" ")).toEqual([...SCHED_BACKENDS]);
  expect(parseBackends("pbs-cli, slurm,pbs-cli")).toEqual(["pbs-cli", "slurm"]);
  expect(() => parseBackends("slurm,lsf")).toThrow("got 'lsf'");
});

test.each([
  ["slurm", "slurm-api-port = 4242"],
  ["slurm-cli", "job-scheduler = slurm-cli\nslurm-conf = /lab/slurm.conf\nslurm-bin-dir = /w/bin"],
  ["slurm-native", "job-scheduler = slurm-native\nslurm-conf = /lab/slurm.conf"],
  ["pbs", "job-scheduler = pbs"],
  ["pbs-cli", "job-scheduler = pbs-cli\npbs-cli-user = nshpbs\npbs-bin-dir = /w/bin"],
] as const)("nsh.conf lines for %s", (backend, lines) => {
  const ctx = { proxyPort: 4242, slurmConf: "/lab/slurm.conf", binDir: "/w/bin", pbsUser: "nshpbs" };
  expect(confOverrides(backend, ctx)).toBe(lines);
});

test("a backend whose counting is not set up says what is missing", () => {
  expect(() => confOverrides("slurm-cli", { slurmConf: "/lab/slurm.conf" })).toThrow("slurm-cli: binDir");
});

test("overrides replace the lab's lines for the same settings, the rest stays in order", () => {
  const base = "job-scheduler = slurm\nslurm-api-port = 6820\nstate-dir = /s\n\n";
  expect(withOverrides(base, "job-scheduler = slurm-cli\nslurm-bin-dir = /b\n")).toBe(
    "slurm-api-port = 6820\nstate-dir = /s\njob-scheduler = slurm-cli\nslurm-bin-dir = /b\n",
  );
  expect(withOverrides(base, "slurm-api-port = 1")).toBe("job-scheduler = slurm\nstate-dir = /s\nslurm-api-port = 1\n");
});

test.each([
  ["POST", "/slurm/v0.0.38/job/submit", "submit"],
  ["GET", "/slurm/v0.0.38/jobs", "status"],
  ["GET", "/slurm/v0.0.38/job/17", "status"],
  ["GET", "/slurm/v0.0.38/job/17?x=1", "status"],
  ["DELETE", "/slurm/v0.0.38/job/17", "cancel"],
  ["GET", "/slurm/v0.0.38/ping", "other"],
  ["GET", "/openapi/v3", "other"],
] as const)("REST %s %s is %s", (method, p, kind) => {
  expect(classifyRest(method, p)).toBe(kind);
});

test.each([
  ["sbatch --version", "other"],
  ["sbatch --parsable --job-name nsh-x", "submit"],
  ["squeue --json -t all -j 1,2", "status"],
  ["sacct -n -P -j 1", "status"],
  ["scancel 17", "cancel"],
  ["qsub -N nsh-x", "submit"],
  ["qstat -B -f -F json", "other"],
  ["qstat -x -f -F json 12.pbs", "status"],
  ["qdel -x 12.pbs", "cancel"],
  ["", undefined],
  ["ls -l", undefined],
] as const)("tool wrapper line '%s' is %s", (line, kind) => {
  expect(classifyCliLine(line)).toBe(kind as CallKind | undefined);
});

test.each([
  ["nsh ffi: slurm-shim nsh_shim_submit(<12 bytes>, NULL, <40 bytes>) -> 42 (3.1 ms)", "submit"],
  ["nsh ffi: slurm-shim nsh_shim_jobs([42,43], <8 bytes>, 2) -> 2 (0.9 ms)", "status"],
  ["nsh ffi: slurm-shim nsh_shim_cancel(42, 9) -> 0 (1.0 ms)", "cancel"],
  ["nsh ffi: slurm-shim nsh_shim_init(<5 bytes>, NULL, 0, NULL, 0) -> 0 (20.3 ms)", "other"],
  ["nsh ffi: slurm-shim nsh_shim_strerror(2017) -> \"Invalid job id specified\" (0.0 ms)", undefined],
  ["nsh ffi: libpbs pbs_connect(\"pbs-lab:15001\") -> 3 (2.2 ms)", "other"],
  ["nsh ffi: libpbs pbs_submit(3, ptr, <20 bytes>, NULL, NULL) -> ptr (5.0 ms)", "submit"],
  ["nsh ffi: libpbs pbs_statjob(3, \"12.pbs-lab\", ptr, \"x\") -> ptr (1.0 ms)", "status"],
  ["nsh ffi: libpbs pbs_deljoblist(3, ptr, 1, NULL) -> NULL (1.0 ms)", "cancel"],
  ["nsh ffi: libpbs pbs_disconnect(3) -> 0 (0.1 ms)", undefined],
  ["building '/nix/store/x.drv' on 'pbs'...", undefined],
] as const)("trace line %#: %s", (line, kind) => {
  expect(classifyFfiLine(line)).toBe(kind as CallKind | undefined);
});

test("counting", () => {
  const counted = countCalls(["submit", undefined, "status", "status", "other"]);
  expect(counted).toEqual({ submit: 1, status: 2, cancel: 0, other: 1 });
});

test("submit → running per job of one run, from the records' marks", () => {
  const rec = (drv: string, submitted: number, running: number) =>
    JSON.stringify({ drv, state: "succeeded", submittedAt: 1, marks: { submitted, running } });
  const text = [
    rec("/s/a-leaf0-salt1.drv", 1000, 1250),
    rec("/s/b-all-salt1.drv", 2000, 2100),
    rec("/s/c-one-salt2.drv", 3000, 3900),
    JSON.stringify({ drv: "/s/d-one-salt1x.drv", state: "failed", submittedAt: 4, marks: { submitted: 1 } }),
    "not json",
  ].join("\n");
  const records = parseJobLines(text);
  expect(records.length).toBe(4);
  expect(submitToRunning(recordsOfRun(records, "salt1"))).toEqual([250, 100]);
  expect(submitToRunning(recordsOfRun(records, "salt1x"))).toEqual([]);
});

test("slurmctld's log: submit RPC and first allocation per job", () => {
  const log = [
    "[2026-12-06T14:55:10.100] _slurm_rpc_submit_batch_job: JobId=7 InitPrio=1 usec=900",
    "[2026-12-06T14:55:10.950] sched: Allocate JobId=7 NodeList=n #CPUs=1 Partition=debug",
    "[2026-12-06T14:55:11.000] sched: Allocate JobId=7 NodeList=n #CPUs=1 Partition=debug",
    "garbage",
  ].join("\n");
  const { submitAt, allocAt } = parseSlurmctldLog(log);
  expect(allocAt.get("7")! - submitAt.get("7")!).toBe(850);
});

test("the wrappers pass arguments, output and exit status through and count what ran", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-sched-test-"));
  try {
    const log = path.join(dir, "calls.log");
    const tool = path.join(dir, "squeue");
    fs.writeFileSync(tool, toolWrapper("squeue", "/bin/echo", log), { mode: 0o755 });
    const r = Bun.spawnSync([tool, "-j", "1,2"]);
    expect(r.stdout.toString()).toBe("-j 1,2\n");
    expect(fs.readFileSync(log, "utf8")).toBe("squeue -j 1,2\n");

    // The hook wrapper: stdin, stdout and stderr stay the hook's; stderr is also copied to a file.
    const fake = path.join(dir, "fake-nsh");
    const traceLine = `echo "nsh ffi: libpbs pbs_connect(\\"h\\") -> 3 (1 ms) $NSH_FFI_TRACE" >&2`;
    fs.writeFileSync(fake, `#!/bin/sh\nread x\necho "out $1 $x"\n${traceLine}\nexit 3\n`, { mode: 0o755 });
    const logs = path.join(dir, "hooks");
    fs.mkdirSync(logs);
    const hook = path.join(dir, "hook.sh");
    fs.writeFileSync(hook, hookWrapper(fake, logs), { mode: 0o755 });
    const h = Bun.spawnSync([hook, "7"], { stdin: Buffer.from("in\n") });
    expect(h.exitCode).toBe(3);
    expect(h.stdout.toString()).toBe("out 7 in\n");
    expect(h.stderr.toString()).toContain("pbs_connect");
    const copies = fs.readdirSync(logs).map((f) => fs.readFileSync(path.join(logs, f), "utf8"));
    expect(copies.join("").split("\n").map(classifyFfiLine)).toContain("other");
    expect(copies.join("")).toContain("(1 ms) 1");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("the nix-build of each case, and the output it must leave", () => {
  const argv = buildArgv("/b/hook.nix", "wide", "s1", 50, "/w/hook.sh");
  expect(argv.slice(0, 7)).toEqual(["nix-build", "--store", "daemon", "--no-out-link", "/b/hook.nix", "-A", "all"]);
  expect(argv.join(" ")).toContain("--argstr salt s1 --arg n 50 --option build-hook /w/hook.sh -j 16");
  expect(buildArgv("/b/hook.nix", "one", "s1", 50, "/w/hook.sh")[6]).toBe("one");
  expect(expectedOutput("one", "s1", 50)).toBe("one s1");
  expect(expectedOutput("wide", "s1", 50)).toBe("1225");
  expect(parseCases("wide, one")).toEqual(["wide", "one"]);
  expect(() => parseCases("one,big")).toThrow("got 'big'");
  expect([0, 1, 2, 5].map((k) => rotate(["a", "b", "c"], k).join(""))).toEqual(["abc", "bca", "cab", "cab"]);
});

test("the report: warm-ups and failed runs are left out, ratios against the first backend, calls per build", () => {
  const calls = (status: number) => ({ submit: 3, status, cancel: 0, other: 3 });
  const run = (backend: SchedBackend, round: number, ms: number, ok = true, status = 4): Run =>
    ({ backend, caseId: "wide", round, salt: `${backend}-${round}`, ms, ok, load1: 1, calls: calls(status) });
  const runs = [
    run("slurm", 0, 99_999), run("slurm", 1, 1000), run("slurm", 2, 3000),
    run("pbs", 1, 1500, true, 6), run("pbs", 2, 99_999, false),
  ];
  const records = [
    { drv: "/s/x-leaf0-slurm-1.drv", jobId: "7", state: "succeeded", submittedAt: 0,
      marks: { submitted: 10, running: 60 } },
    { drv: "/s/x-leaf0-pbs-1.drv", jobId: "8.pbs", state: "succeeded", submittedAt: 0,
      marks: { submitted: 10, running: 30 } },
  ];
  const ctld = { submitAt: new Map([["7", 100]]), allocAt: new Map([["7", 140]]) };
  const input = { backends: ["slurm", "pbs"] as SchedBackend[], cases: ["wide" as const], width: 2, runs, records, ctld };
  const [wall, latency, counted] = reportTables(input);
  expect(wall).toContain("| slurm | 2 / 2 | 2000 (1000–3000) | 1.00 |");
  expect(wall).toContain("| pbs | 1 / 2 | 1500 (1500–1500) | 0.75 |");
  expect(latency).toContain("| slurm | 1 | 50 (50–50) | 50 | 40 (40–40) |");
  expect(latency).toContain("| pbs | 1 | 20 (20–20) | 20 | – |");
  expect(counted).toContain("| slurm | HTTP proxy in front of slurmrestd | 3 / 4 / 0 / 3 | 1.3 |");
  expect(counted).toContain("| pbs | NSH_FFI_TRACE (libpbs calls) | 3 / 6 / 0 / 3 | 2.0 |");
});
