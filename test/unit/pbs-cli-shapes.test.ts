// pbs-cli's pure parts: qsub's argv and environment for a job spec (values never in argv, refused
// pbsResources before any qsub), and the parsers on REAL `qstat -f -F json` / `-F dsv` outputs
// captured from the OpenPBS 23.06 lab (test/unit/fixtures/pbs-cli/): queued, held, waiting,
// running, finished ok, finished with exit 7, killed by signal 9, deleted while held and running,
// walltime exceeded (Exit_status -29).
import { describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  buildQsub, DSV_DELIMITER, execHosts, isPbsJobId, isSlurmWrapper, matchId, parsePbsConf, parsePbsTime,
  parseQstatDsv, parseQstatJson, parseQsubOutput, parseServerStatus, parseWalltime, qdelHarmless, statusOf,
  taggedIn, TAG_VARIABLE, unknownIds, walltime,
} from "../../src/schedulers/pbs-cli-shapes.ts";
import { type JobSpec, SchedulerError } from "../../src/schedulers/scheduler.ts";

const dir = path.join(import.meta.dir, "fixtures", "pbs-cli");
const fixture = (name: string): unknown => JSON.parse(fs.readFileSync(path.join(dir, name), "utf8"));
const H = "nshpbs-9be4";
const one = (name: string): ReturnType<typeof statusOf> => {
  const [id, attrs] = [...parseQstatJson(fixture(name))][0]!;
  return statusOf(id, attrs);
};

const spec = (more: Partial<JobSpec> = {}): JobSpec => ({
  name: "nsh-build",
  script: "#!/bin/sh\necho hi\n",
  workingDirectory: "/var/lib/nsh/jobs/a b",
  environment: { PATH: "/usr/bin:/bin", NSH_TOKEN: "secret.jwt.value" },
  stdout: "/var/lib/nsh/jobs/x.out",
  stderr: "/var/lib/nsh/jobs/x.out",
  timeLimitMinutes: 90,
  ...more,
});

describe("buildQsub", () => {
  test("argv: foreground, -V, name, server, walltime then pbsResources, output paths; env is the job's", () => {
    const call = buildQsub(spec({ tag: "nsh:k1", extra: { ncpus: "2", mem: "1gb" } }), {
      server: "pbs1", toolEnv: { PBS_CONF_FILE: "/etc/pbs.conf" } });
    expect(call.args).toEqual(["-f", "-V", "-N", "nsh-build", "-q", "@pbs1", "-l", "walltime=01:30:00", "-l", "ncpus=2",
      "-l", "mem=1gb", "-o", "/var/lib/nsh/jobs/x.out", "-e", "/var/lib/nsh/jobs/x.out"]);
    expect(call.env).toEqual({ PATH: "/usr/bin:/bin", NSH_TOKEN: "secret.jwt.value", [TAG_VARIABLE]: "nsh:k1",
      PBS_CONF_FILE: "/etc/pbs.conf" });
    expect(call.args.join(" ")).not.toContain("secret");
    expect(call.script).toBe("#!/bin/sh\ncd '/var/lib/nsh/jobs/a b' || exit 1\necho hi\n");
  });

  test("pbsResources' walltime wins over the time limit", () => {
    expect(buildQsub(spec({ extra: { walltime: "00:05:00" } })).args).toContain("walltime=00:05:00");
  });

  test.each([
    [{ ncpus: 2 }, "'ncpus': expected a string, got 2"],
    [{ mem: { a: 1 } }, "'mem': expected a string"],
    [{ walltime: "1,ncpus=99" }, "without commas"],
    [{ select: "1:ncpus=2 -W x" }, "without commas, quotes or spaces"],
    [{ "bad key": "1" }, "'bad key' is not a PBS resource name"],
  ])("refused pbsResources %j: a clear error", (extra, message) => {
    expect(() => buildQsub(spec({ extra: extra as JobSpec["extra"] }))).toThrow(message);
    try {
      buildQsub(spec({ extra: extra as JobSpec["extra"] }));
    } catch (e) {
      expect((e as SchedulerError).kind).toBe("config");
    }
  });

  test("a job environment with PBS_ variables (qsub's own settings) is refused", () => {
    expect(() => buildQsub(spec({ environment: { PBS_SERVER: "elsewhere" } }))).toThrow("PBS_SERVER");
  });

  test("walltime and its parse", () => {
    expect(walltime(5)).toBe("00:05:00");
    expect(walltime(1501)).toBe("25:01:00");
    expect(() => walltime(0)).toThrow();
    expect(parseWalltime("00:05:00")).toBe(5);
    expect(parseWalltime("01:00:01")).toBe(61);
    expect(parseWalltime("120")).toBe(2);
    expect(parseWalltime("soon")).toBeNull();
  });
});

describe("qstat parsers on the lab's real outputs", () => {
  test.each([
    ["queued.json", { state: "pending", reason: "Can Never Run: Insufficient amount of resource: ncpus (R: 64 A: 2 T: 2)" }],
    ["held.json", { state: "pending", reason: "held", nodes: null, startTime: null, timeLimitMinutes: null }],
    ["waiting.json", { state: "pending", reason: "waiting for its execution time" }],
    ["running.json", { state: "running", nodes: H, exitCode: null, timeLimitMinutes: 5, endTime: null }],
    ["finished-ok.json", { state: "completed", exitCode: 0, signal: null, nodes: H, timeLimitMinutes: 2 }],
    ["finished-exit7.json", { state: "failed", exitCode: 7, signal: null }],
    ["killed-signal9.json", { state: "failed", exitCode: null, signal: 9 }],
    ["deleted-held.json", { state: "cancelled", exitCode: null, nodes: null }],
    ["deleted-running.json", { state: "cancelled", exitCode: null, signal: null, nodes: H }],
    ["walltime-exceeded.json", { state: "timeout", exitCode: null, reason: expect.stringContaining("exceeded resource walltime") }],
  ])("%s", (name, want) => {
    expect(one(name)).toMatchObject(want);
  });

  test("times: start of a running job, end of a finished one (qstat run with TZ=UTC)", () => {
    expect(one("running.json").startTime).toBe(Date.UTC(2026, 11, 6, 12, 42, 21) / 1000);
    expect(one("finished-ok.json").endTime).toBe(Date.UTC(2026, 11, 6, 12, 42, 21) / 1000);
    expect(parsePbsTime("Sun Dec  6 12:42:21 2026")).toBe(1796560941);
    expect(parsePbsTime("yesterday")).toBeNull();
  });

  test("DSV of seven jobs in one qstat: the same statuses as each job's JSON", () => {
    const jobs = parseQstatDsv(fs.readFileSync(path.join(dir, "many.dsv"), "utf8"));
    expect([...jobs.keys()]).toEqual([0, 1, 2, 3, 4, 5, 6].map((n) => `${n}.${H}`));
    const st = (n: number): ReturnType<typeof statusOf> => statusOf(`${n}.${H}`, jobs.get(`${n}.${H}`)!);
    expect(st(0)).toMatchObject({ state: "completed", exitCode: 0, timeLimitMinutes: 2, nodes: H });
    expect(st(1)).toMatchObject({ state: "failed", exitCode: 7 });
    expect(st(3)).toMatchObject({ state: "cancelled", nodes: H });
    expect(st(4).reason).toContain("Can Never Run");
    expect(st(6)).toMatchObject({ state: "failed", signal: 9 });
    expect(jobs.get(`0.${H}`)!.Variable_List).toContain("NSH_X=1");
  });

  test("DSV: an escaped delimiter stays inside its value", () => {
    const d = DSV_DELIMITER;
    const text = `Job Id: 9.h${d}job_state=R${d}comment=a\\${d}b${d}substate=42\n`;
    expect(parseQstatDsv(text).get("9.h")).toEqual({ job_state: "R", comment: `a${DSV_DELIMITER}b`, substate: "42" });
  });

  test("Exit_status: PBS's JOB_EXEC codes", () => {
    expect(statusOf("1", { job_state: "F", substate: "93", Exit_status: "-29" })).toMatchObject({ state: "timeout" });
    expect(statusOf("1", { job_state: "F", substate: "93", Exit_status: "-27" })).toMatchObject({ state: "out_of_memory" });
    expect(statusOf("1", { job_state: "F", substate: "93", Exit_status: "-1" }).reason).toContain("Exit_status -1");
    expect(statusOf("1", { job_state: "E" }).state).toBe("completing");
    expect(statusOf("1", { job_state: "M" }).state).toBe("unknown");
  });

  test("findTagged: unfinished jobs whose Variable_List carries the tag", () => {
    const jobs = parseQstatJson(fixture("unfinished.json"));
    expect(jobs.size).toBe(4);
    const tagged = new Map(jobs);
    const held = `2.${H}`;
    tagged.set(held, { ...jobs.get(held)!, [`Variable_List.${TAG_VARIABLE}`]: "nsh:abc" });
    tagged.set(`0.${H}`, { job_state: "F", [`Variable_List.${TAG_VARIABLE}`]: "nsh:abc" });
    expect(taggedIn(tagged, "nsh:abc")).toEqual([held]);
    expect(taggedIn(tagged, "nsh:other")).toEqual([]);
  });
});

describe("small parsers", () => {
  test("ids, qsub output, unknown ids, qdel's harmless complaints", () => {
    expect(isPbsJobId(`12.${H}`)).toBe(true);
    expect(isPbsJobId("12[].srv")).toBe(true);
    expect(isPbsJobId("-x")).toBe(false);
    expect(parseQsubOutput(`7.${H}\n`)).toBe(`7.${H}`);
    expect(parseQsubOutput("qsub: error")).toBeNull();
    expect(unknownIds(`qstat: Unknown Job Id 999.${H}\n`)).toEqual([`999.${H}`]);
    expect(qdelHarmless(`Job has finished 0.${H}`)).toBe(true);
    expect(qdelHarmless(`Unknown Job Id 999.${H}`)).toBe(true);
    expect(qdelHarmless("Unauthorized Request")).toBe(false);
    expect(matchId("5.srv", ["5.srv.example.org"])).toBe("5.srv.example.org");
    expect(matchId("5", ["15.srv", "5.srv"])).toBe("5.srv");
  });

  test("pbs.conf, exec_host, Slurm's wrapper, the server's answer", () => {
    const conf = parsePbsConf("PBS_EXEC=/opt/pbs\n# c\nPBS_SERVER = head1\n");
    expect(conf).toEqual({ PBS_EXEC: "/opt/pbs", PBS_SERVER: "head1" });
    expect(execHosts("n1/0*2+n2/1+n1/3")).toBe("n1,n2");
    expect(isSlurmWrapper("#!/usr/bin/perl -w\n# Slurm's qsub wrapper\n")).toBe(true);
    expect(isSlurmWrapper("\x7fELF...")).toBe(false);
    expect(parseServerStatus(fixture("server.json"))).toEqual({ server: H, version: "23.06.06" });
  });
});
