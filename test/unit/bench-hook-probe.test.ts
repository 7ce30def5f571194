// Expected: the pure parts of the hook benchmark's probe (bench/hook-probe.ts, bench/hook-wide.ts)
// read /proc/<pid>/stat (a comm with spaces and parentheses included) and /proc/net/tcp, count only
// established client connections to the sshd's port per host, name each process's kind (the
// benchmarked nsh by its executable, the node's agent by its argv), account CPU time and starts per
// kind over a run (processes already running count from their first sample), sum RSS, and give the
// peak (any 1 s window) and mean request rates. The benchmark itself is not run here.
import { expect, test } from "bun:test";
import {
  connectionsTo, CpuLedger, isSubmitNsh, parseProcNetTcp, parseStat, processKind, requestRate, summedRss,
} from "../../bench/hook-probe.ts";
import { cpuPerKind, type ProbeRun } from "../../bench/hook-wide.ts";

const stat = (pid: number, comm: string, ppid: number, utime: number, stime: number, start: number, rss: number) =>
  `${pid} (${comm}) S ${ppid} ${pid} ${pid} 0 -1 4194560 100 0 0 0 ${utime} ${stime} 0 0 20 0 1 0 ${start} 1000 ${rss} `
  + "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";

test("parseStat: fields by proc(5) number, a comm with spaces and ')' inside, junk is undefined", () => {
  const cases: Array<[string, ReturnType<typeof parseStat>]> = [
    [stat(42, "nsh", 7, 30, 12, 5000, 2560), { pid: 42, comm: "nsh", ppid: 7, ticks: 42, start: 5000, rssPages: 2560 }],
    [stat(43, "a b) (c", 1, 1, 2, 9, 3), { pid: 43, comm: "a b) (c", ppid: 1, ticks: 3, start: 9, rssPages: 3 }],
    ["", undefined],
    ["12 (x) S 1", undefined],
  ];
  for (const [text, want] of cases) expect(parseStat(text)).toEqual(want);
});

const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:A1B2 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1111 1 0 100 0 0 10 0
   1: 0100007F:C000 0100007F:A1B2 01 00000000:00000000 00:00000000 00000000     0        0 2222 1 0 20 4 30 10 -1
   2: 0100007F:C001 0100007F:A1B2 01 00000000:00000000 00:00000000 00000000     0        0 3333 1 0 20 4 30 10 -1
   3: 0100007F:A1B2 0100007F:C000 01 00000000:00000000 00:00000000 00000000     0        0 4444 1 0 20 4 30 10 -1
   4: 0100007F:C002 0100007F:A1B2 06 00000000:00000000 00:00000000 00000000     0        0 0 3 0 0 0 0 0 0
   5: 0200000A:C003 0300000A:A1B2 01 00000000:00000000 00:00000000 00000000     0        0 5555 1 0 20 4 30 10 -1
   6: 0100007F:C004 0100007F:0016 01 00000000:00000000 00:00000000 00000000     0        0 6666 1 0 20 4 30 10 -1
garbage line
`;

test("parseProcNetTcp: addresses decoded (little-endian IPv4), header and junk skipped", () => {
  const conns = parseProcNetTcp(TCP);
  expect(conns.length).toBe(7);
  expect(conns[1]).toEqual({
    localIp: "127.0.0.1", localPort: 0xc000, remoteIp: "127.0.0.1", remotePort: 0xa1b2, state: "01", inode: 2222,
  });
  expect(conns[5]!.remoteIp).toBe("10.0.0.3");
});

test("connectionsTo: established client sides only (not the listener, the server side, TIME_WAIT, other ports)", () => {
  const per = connectionsTo(parseProcNetTcp(TCP), 0xa1b2);
  expect(Object.fromEntries(per)).toEqual({ "127.0.0.1": 2, "10.0.0.3": 1 });
  expect(connectionsTo(parseProcNetTcp(TCP), 9).size).toBe(0);
});

test("processKind: the benchmarked binary by its executable, the node's agent by argv, nix-store --serve", () => {
  const nsh = "/tmp/nsh-bench-bin-x/nsh";
  const cases: Array<[string, string[], string, string]> = [
    ["nsh", [nsh, "3"], nsh, "nsh hook"],
    ["nsh", [nsh], nsh, "nsh hook"],
    ["nsh", [nsh, "hook", "3"], nsh, "nsh hook"],
    ["nsh", [nsh, "__job-reaper"], nsh, "nsh job-reaper"],
    ["nsh", [nsh, "jobs", "--all"], nsh, "nsh jobs"],
    ["nsh", ["/x/agent/nsh", "__agent", "/d"], "/x/agent/nsh", "nsh agent (node)"],
    ["nsh", ["/usr/bin/nsh", "3"], "/usr/bin/nsh", "nsh"], // another nsh on the machine is not the benchmarked one
    ["nix-store", ["nix-store", "--serve", "--write"], "/usr/bin/nix", "nix-store --serve"],
    ["ssh", ["ssh", "-F", "cfg", "host"], "/usr/bin/ssh", "ssh"],
    ["slurmctld", ["slurmctld", "-D"], "/usr/sbin/slurmctld", "slurmctld"],
  ];
  for (const [comm, argv, exe, want] of cases) expect(processKind(comm, argv, exe, nsh)).toBe(want);
  const kinds = ["nsh hook", "nsh job-reaper", "nsh agent (node)", "ssh"];
  expect(kinds.map(isSubmitNsh)).toEqual([true, true, false, false]);
});

test("CpuLedger: old processes count from their first sample, new ones from zero; the last kind wins", () => {
  const ledger = new CpuLedger(100);
  ledger.observe([{ key: "1:10", kind: "slurmctld", ticks: 5000 }]);
  ledger.observe([
    { key: "1:10", kind: "slurmctld", ticks: 5030 },
    { key: "2:20", kind: "nsh hook", ticks: 40 },
    { key: "3:30", kind: "nsh hook", ticks: 10 },
  ]);
  ledger.observe([
    { key: "1:10", kind: "slurmctld", ticks: 5050 },
    { key: "3:30", kind: "ssh", ticks: 25 }, // the forked child exec'd ssh
  ]);
  expect(Object.fromEntries(ledger.totals())).toEqual({
    slurmctld: { cpuS: 0.5, started: 0 },
    "nsh hook": { cpuS: 0.4, started: 1 },
    ssh: { cpuS: 0.25, started: 1 },
  });
});

test("summedRss: only the kinds picked, pages times page size", () => {
  const procs = [
    { kind: "nsh hook", rssPages: 100 }, { kind: "nsh job-reaper", rssPages: 50 },
    { kind: "ssh", rssPages: 1000 }, { kind: "nsh agent (node)", rssPages: 7 },
  ];
  expect(summedRss(procs, 4096, isSubmitNsh)).toBe(150 * 4096);
  expect(summedRss([], 4096, isSubmitNsh)).toBe(0);
});

test("requestRate: the most requests in any 1 s window, and the mean over the run", () => {
  const cases: Array<[number[], number, number, { count: number; meanPerS: number; peakPerS: number }]> = [
    [[], 0, 10_000, { count: 0, meanPerS: 0, peakPerS: 0 }],
    [[500, 1400, 1499, 2500], 0, 4000, { count: 4, meanPerS: 1, peakPerS: 3 }],
    [[2499, 1500, 1499], 0, 2000, { count: 3, meanPerS: 1.5, peakPerS: 2 }], // unsorted; 1499 and 2499 are 1 s apart
    [[0, 0, 0], 0, 0, { count: 3, meanPerS: Number.NaN, peakPerS: 3 }],
  ];
  for (const [times, from, to, want] of cases) expect(requestRate(times, from, to)).toEqual(want);
});

test("cpuPerKind: CPU per run averaged over runs, starts per build over all builds, biggest first", () => {
  const run = (hook: number, ssh: number, started: number): ProbeRun => ({
    caseId: "wide", variant: "nsh", round: 1, ok: true, builds: 51,
    summary: {
      samples: 1, seconds: 1, peakNshRssBytes: 0, peakAgentRssBytes: 0, maxSshConns: 0, benchCpuS: 0,
      perKind: { "nsh hook": { cpuS: hook, started }, ssh: { cpuS: ssh, started: 0 } },
      requests: {} as ProbeRun["summary"]["requests"],
    },
  });
  expect(cpuPerKind([run(10, 1, 51), run(20, 3, 102)])).toEqual([
    { kind: "nsh hook", cpuS: 15, startedPerBuild: 1.5 },
    { kind: "ssh", cpuS: 2, startedPerBuild: 0 },
  ]);
});
