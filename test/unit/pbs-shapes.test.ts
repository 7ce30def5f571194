// pbs-shapes: pbsResources checked (strings only, clear message otherwise), the submit attribute list
// (name, walltime, output paths, escaped Variable_List with the tag), pbs.conf read, and pbs_statjob
// records mapped onto nsh's job states (Q/H/W/T/R/E/F/X, Exit_status codes, deleted jobs).
import { describe, expect, test } from "bun:test";
import {
  execNodes, goneJob, jobName, jobStatus, jobTag, parsePbsConf, parseResources, parseVariableList, type PbsAttr,
  submitAttributes, variableList, walltime, walltimeMinutes,
} from "../../src/schedulers/pbs-shapes.ts";
import type { JobState } from "../../src/schedulers/scheduler.ts";

const rec = (attrs: Record<string, string>, more: PbsAttr[] = []) => ({
  id: "12.server",
  attrs: [...Object.entries(attrs).map(([name, value]) => ({ name, value })), ...more],
});

describe("parseResources", () => {
  test("strings become Resource_List entries", () => {
    expect(parseResources({ ncpus: "4", mem: " 8gb " })).toEqual({
      ok: true,
      value: [
        { name: "Resource_List", resource: "ncpus", value: "4" },
        { name: "Resource_List", resource: "mem", value: "8gb" },
      ],
    });
    expect(parseResources(undefined)).toEqual({ ok: true, value: [] });
  });

  test.each([
    [{ ncpus: 4 }, "ncpus must be a string (as after qsub -l ncpus=), got 4"],
    [{ mem: { a: 1 } }, 'mem must be a string (as after qsub -l mem=), got {"a":1}'],
    [{ walltime: "" }, "walltime is empty"],
    [{ "bad name": "1" }, "'bad name' is not a PBS resource name"],
  ])("%j is refused: %s", (extra, message) => {
    const r = parseResources(extra);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toBe(`pbsResources: ${message}; nothing was submitted`);
  });
});

describe("submit attributes", () => {
  test("escaped environment, tag, walltime from the time limit, output paths", () => {
    const attrs = submitAttributes(
      {
        name: "nsh-abc/hello", script: "", workingDirectory: "/w", environment: { A: "x,y\\z'q\"" },
        stdout: "/o", timeLimitMinutes: 90, tag: "t1",
      },
      [],
    );
    expect(attrs).toEqual([
      { name: "Job_Name", value: "nsh-abc_hello" },
      { name: "Resource_List", resource: "walltime", value: "01:30:00" },
      { name: "Output_Path", value: "/o" },
      { name: "Error_Path", value: "/o" },
      { name: "Join_Path", value: "oe" },
      { name: "Variable_List", value: "A=x\\,y\\\\z\\'q\\\",PBS_O_WORKDIR=/w,NSH_JOB_TAG=t1" },
    ]);
    expect(parseVariableList(attrs[5]!.value)).toEqual({ A: "x,y\\z'q\"", PBS_O_WORKDIR: "/w", NSH_JOB_TAG: "t1" });
  });

  test("a walltime in pbsResources wins over the time limit", () => {
    const res: PbsAttr[] = [{ name: "Resource_List", resource: "walltime", value: "00:10:00" }];
    const job = { name: "j", script: "", workingDirectory: "/", environment: {}, timeLimitMinutes: 5 };
    const attrs = submitAttributes(job, res);
    expect(attrs.filter((a) => a.resource === "walltime")).toEqual(res);
  });

  test("names and times", () => {
    expect(jobName("1abc def")).toBe("j1abc_def");
    expect(walltime(0.5)).toBe("00:01:00");
    expect(walltime(125)).toBe("02:05:00");
    expect(walltimeMinutes("01:30:00")).toBe(90);
    expect(walltimeMinutes(undefined)).toBeNull();
    expect(execNodes("n1/0*2+n2/1+n1/3")).toBe("n1,n2");
    expect(() => variableList({ "BAD-NAME": "1" })).toThrow("BAD-NAME");
  });
});

test("parsePbsConf", () => {
  expect(parsePbsConf("# c\nPBS_SERVER=head\n\n PBS_EXEC = /opt/pbs \nPBS_BATCH_SERVICE_PORT=15002\n")).toEqual({
    PBS_SERVER: "head", PBS_EXEC: "/opt/pbs", PBS_BATCH_SERVICE_PORT: "15002",
  });
});

describe("jobStatus", () => {
  test.each<[Record<string, string>, JobState, number | null, number | null]>([
    [{ job_state: "Q" }, "pending", null, null],
    [{ job_state: "H" }, "pending", null, null],
    [{ job_state: "W" }, "pending", null, null],
    [{ job_state: "T" }, "pending", null, null],
    [{ job_state: "R" }, "running", null, null],
    [{ job_state: "B" }, "running", null, null],
    [{ job_state: "E" }, "completing", null, null],
    [{ job_state: "F", Exit_status: "0", substate: "92" }, "completed", 0, null],
    [{ job_state: "X", Exit_status: "0" }, "completed", 0, null],
    [{ job_state: "F", Exit_status: "3", substate: "92" }, "failed", 3, null],
    [{ job_state: "F", Exit_status: "265", substate: "92" }, "failed", null, 9],
    [{ job_state: "F", Exit_status: "143", substate: "91" }, "cancelled", null, 15],
    [{ job_state: "F", Exit_status: "271", substate: "91" }, "cancelled", null, 15],
    [{ job_state: "F", substate: "91" }, "cancelled", null, null],
    [{ job_state: "F", Exit_status: "-29", substate: "93" }, "timeout", null, null],
    [{ job_state: "F", Exit_status: "-27", substate: "93" }, "out_of_memory", null, null],
    [{ job_state: "F", Exit_status: "-20", substate: "93" }, "node_fail", null, null],
    [{ job_state: "F", Exit_status: "-10", substate: "93" }, "failed", null, null],
    [{ job_state: "Z" }, "unknown", null, null],
  ])("%j → %s", (attrs, state, exitCode, signal) => {
    const s = jobStatus(rec(attrs));
    expect([s.state, s.exitCode, s.signal]).toEqual([state, exitCode, signal]);
  });

  test("reason, nodes, times and limit", () => {
    const s = jobStatus(
      rec({ job_state: "F", Exit_status: "-29", comment: "killed", exec_host: "n1/0", stime: "100", obittime: "200" }, [
        { name: "Resource_List", resource: "walltime", value: "00:05:00" },
      ]),
    );
    expect(s.reason).toBe("the job exceeded its walltime; killed");
    expect([s.nodes, s.startTime, s.endTime, s.timeLimitMinutes]).toEqual(["n1", 100, 200, 5]);
    expect(jobStatus(rec({ job_state: "H", comment: "by user" })).reason).toBe("held: by user");
  });

  test("a job PBS forgot is unknown and says why", () => {
    expect(goneJob("5.s").state).toBe("unknown");
    expect(goneJob("5.s").reason).toContain("job_history_enable");
  });

  test("the tag comes back from Variable_List", () => {
    expect(jobTag(rec({ Variable_List: "A=1\\,2,NSH_JOB_TAG=abc" }))).toBe("abc");
    expect(jobTag(rec({ Variable_List: "A=1" }))).toBeNull();
  });
});
