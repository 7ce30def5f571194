// Table tests of slurm-native's pure parts: slurmNativeConstraints checked and converted (memory in
// MB; memPerNode and memPerCPU mutually exclusive), the shim's job lines turned into statuses
// (the same state, reason and exit-status meanings as the REST backend), and the packed environment.
import { describe, expect, test } from "bun:test";
import {
  errnoKind,
  numericIds,
  packEnvironment,
  parseConstraints,
  parseJobLines,
  submitNumbers,
} from "../../src/schedulers/slurm-native-shapes.ts";

describe("parseConstraints", () => {
  const ok: [string, Record<string, unknown> | undefined, object][] = [
    ["none", undefined, {}],
    ["empty", {}, {}],
    ["cpus", { cpus: 4 }, { cpus: 4 }],
    ["memPerNode in MB", { memPerNode: 8192 }, { memPerNodeMb: 8192 }],
    ["memPerNode as text", { memPerNode: "8G" }, { memPerNodeMb: 8192 }],
    ["memPerCPU with unit M", { cpus: 2, memPerCPU: "512M" }, { cpus: 2, memPerCpuMb: 512 }],
    ["KB round up to a MB", { memPerCPU: "1500K" }, { memPerCpuMb: 2 }],
    ["TB", { memPerNode: "1T" }, { memPerNodeMb: 1048576 }],
  ];
  for (const [what, input, want] of ok) {
    test(`accepts ${what}`, () => {
      expect(parseConstraints(input as never)).toEqual({ ok: true, value: want });
    });
  }

  const bad: [string, Record<string, unknown>, string][] = [
    ["both memory settings", { memPerNode: 100, memPerCPU: 50 }, "memPerNode and memPerCPU are mutually exclusive"],
    ["zero cpus", { cpus: 0 }, "cpus must be a whole number from 1 to 65535, got 0"],
    ["fractional cpus", { cpus: 1.5 }, "got 1.5"],
    ["cpus as text", { cpus: "4" }, 'got "4"'],
    ["negative memory", { memPerNode: -1 }, "memPerNode must be megabytes"],
    ["memory with a bad unit", { memPerCPU: "4Q" }, 'got "4Q"'],
    ["a key slurm-native does not know", { cpus: 1, partition: "big" }, "slurm-native knows cpus, memPerNode, memPerCPU, not partition"],
  ];
  for (const [what, input, message] of bad) {
    test(`refuses ${what}, saying nothing was submitted`, () => {
      const r = parseConstraints(input as never);
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.error).toContain(message);
        expect(r.error).toStartWith("slurmNativeConstraints: ");
        expect(r.error).toEndWith("nothing was submitted");
      }
    });
  }
});

test("submitNumbers: time limit, cpus, memory per node, memory per CPU; 0 for Slurm's default", () => {
  expect([...submitNumbers(30, { cpus: 2, memPerCpuMb: 512 })]).toEqual([30n, 2n, 0n, 512n]);
  expect([...submitNumbers(undefined, {})]).toEqual([0n, 0n, 0n, 0n]);
});

describe("packEnvironment", () => {
  test("NUL-terminated K=V strings; values may hold newlines and '='", () => {
    const { buf, count } = packEnvironment({ PATH: "/bin", MULTI: "a\nb=c" });
    expect(count).toBe(2);
    expect(buf.toString()).toBe("PATH=/bin\0MULTI=a\nb=c\0");
  });
  test("an empty environment gets a PATH (Slurm refuses a batch job without one)", () => {
    expect(packEnvironment({}).count).toBe(1);
    expect(packEnvironment({}).buf.toString()).toStartWith("PATH=");
  });
  test("names C cannot carry are dropped", () => {
    expect(packEnvironment({ "A=B": "x", "": "y", OK: "1" }).buf.toString()).toBe("OK=1\0");
  });
});

describe("parseJobLines", () => {
  // Lines as nsh_shim_jobs writes them (captured from the Slurm 22.05 lab, ids and times edited).
  const line = (...f: string[]) => `${f.join("\t")}\n`;
  const text =
    line("11", "COMPLETED", "", "vm", "0", "1796560140", "1796560142", "5", "nsh-tag-a") +
    line("12", "FAILED", "NonZeroExitCode", "vm", "768", "1796560149", "1796560149", "-1", "") +
    line("13", "PENDING", "Resources", "", "0", "1796563749", "1796567349", "5", "two words") +
    line("14", "CANCELLED", "None", "vm", "15", "1796560150", "1796560160", "5", "") +
    line("15", "RUNNING,COMPLETING", "", "vm", "0", "1796560150", "0", "5", "") +
    line("16", "RUNNING", "", "vm", "0", "1796560150", "1796560450", "5", "");
  const jobs = parseJobLines(text);
  const by = (id: string) => jobs.find((j) => j.status.id === id)!;

  test("completed: exit 0, times, time limit, comment", () => {
    expect(by("11").status).toEqual({
      id: "11", state: "completed", rawState: ["COMPLETED"], reason: null, nodes: "vm",
      exitCode: 0, signal: null, startTime: 1796560140, endTime: 1796560142, timeLimitMinutes: 5,
    });
    expect(by("11").comment).toBe("nsh-tag-a");
  });
  test("failed: the raw wait status 768 is exit code 3; no time limit is null", () => {
    expect(by("12").status).toMatchObject({ state: "failed", exitCode: 3, signal: null, reason: "NonZeroExitCode", timeLimitMinutes: null });
  });
  test("pending: Slurm's expected start and end are estimates, not times", () => {
    expect(by("13").status).toMatchObject({ state: "pending", reason: "Resources", nodes: null, startTime: null, endTime: null, exitCode: null });
    expect(by("13").comment).toBe("two words");
  });
  test("cancelled by a signal: the signal, no exit code; reason None is no reason", () => {
    expect(by("14").status).toMatchObject({ state: "cancelled", exitCode: null, signal: 15, reason: null });
  });
  test("a completing flag overrides the base state; running has no end time yet", () => {
    expect(by("15").status).toMatchObject({ state: "completing", rawState: ["RUNNING", "COMPLETING"] });
    expect(by("16").status).toMatchObject({ state: "running", endTime: null, exitCode: null });
  });
  test("garbage lines are skipped", () => {
    expect(parseJobLines("\nnot a job\n12\tFAILED\n")).toEqual([]);
  });
});

test("errnoKind: connection errors are 'unreachable', auth errors 'auth', the rest 'rejected'", () => {
  expect([1001, 1800, 5004, 1007, 6000, 1005, 2017, 2002].map(errnoKind)).toEqual([
    "unreachable", "unreachable", "unreachable", "auth", "auth", "version", "rejected", "rejected",
  ]);
});

test("numericIds: Slurm job numbers only, the bad ones named", () => {
  expect(numericIds(["1", "42"])).toEqual({ ok: true, ids: Uint32Array.from([1, 42]) });
  expect(numericIds(["1", "x", "0", "12.pbs"])).toEqual({ ok: false, error: "not Slurm job ids: x, 0, 12.pbs" });
});
