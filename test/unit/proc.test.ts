import { expect, test } from "bun:test";
import { parseMemAvailable, parseMemoryCgroup, parseProcStatus, parseSocketLink, parseStartTime } from "../../src/sys/proc.ts";

test("status", () => {
  const s = parseProcStatus("Name:\tnix\nState:\tT (stopped)\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\nVmSwap:\t 512 kB\n");
  expect(s).toEqual({ state: "T", rssBytes: 1024 * 1024, hwmBytes: 2048 * 1024, swapBytes: 512 * 1024 });
});
test("start time survives spaces and parens in the command name", () => {
  const stat = "123 (a) b) c) S 1 123 123 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
  expect(parseStartTime(stat)).toBe(987654);
});
test("meminfo", () => expect(parseMemAvailable("MemTotal: 10 kB\nMemAvailable:    2048 kB\n")).toBe(2 << 20));
test("cgroup v1 and v2 lines", () =>
  expect(parseMemoryCgroup("12:memory:/bench/a\n5:cpu,cpuacct:/\n0::/user.slice\n")).toEqual({ v1: "/bench/a", v2: "/user.slice" }));
test.each([
  ["socket:[12345]", 12345],
  ["socket:[4294967295]", 4294967295],
  ["pipe:[12345]", undefined],
  ["/dev/null", undefined],
  ["socket:[]", undefined],
  ["anon_inode:[eventfd]", undefined],
])("fd link %p names socket inode %p", (link, ino) => expect(parseSocketLink(link)).toBe(ino));
