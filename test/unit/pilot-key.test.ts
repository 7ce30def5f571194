// Expected: a pilot job serves only builds whose own job would have been the same: two builds of
// the same shape (differing only in their derivation, key, directory, name and tag) get the same
// resource key; a different partition/resource request, time limit, environment, agent option or
// scheduler endpoint gives another. A build fits a pilot only when its requested time (or, asking
// none, half the job's limit) plus a margin remains; the agent's --pilot-idle option round-trips.
import { expect, test } from "bun:test";
import { agentArgs, parseAgentArgs } from "../../src/agent/protocol.ts";
import { jobDir, jobSpec } from "../../src/hook/job-plan.ts";
import { pilotEndsAt, pilotIdleUntil, pilotNeedMs, pilotResourceKey } from "../../src/hook/pilot-key.ts";
import { parseDerivation } from "../../src/nix/derivation.ts";
import { pilotFits } from "../../src/state/pilots.ts";

const drvText = (name: string, env: [string, string][]) =>
  `Derive([("out","/nix/store/ffffffffffffffffffffffffffffffff-${name}","","")],[],[],"x86_64-linux","/bin/sh",["-c","echo"],[${env.map(([k, v]) => `(${JSON.stringify(k)},${JSON.stringify(v)})`).join(",")}])`;

interface Shape {
  name?: string;
  key?: string;
  params?: string;
  buildTimeout?: number;
  environment?: string[];
  pilotIdleSec?: number;
  endpoint?: string;
}

function keyOf(o: Shape): string {
  const name = o.name ?? "a";
  const key = o.key ?? "k1";
  const drvPath = `/nix/store/ffffffffffffffffffffffffffffffff-${name}.drv`;
  const drv = parseDerivation(drvText(name, o.params ? [["extraSlurmParams", o.params]] : []));
  const spec = jobSpec({
    drvPath, drv, stateDir: "/st", key, agentPath: "/st/bin/nsh-a", remoteStore: "auto", nixBinDir: "", collectGarbage: false,
    buildTimeout: o.buildTimeout ?? 0, paramsAttr: "extraSlurmParams", environment: o.environment ?? [], pilotIdleSec: o.pilotIdleSec ?? 30,
  });
  return pilotResourceKey(o.endpoint ?? "slurm at http://h:6820", spec, jobDir("/st", key));
}

const base = keyOf({});
test.each<[string, Shape, boolean]>([
  ["another derivation, key and directory", { name: "b", key: "k2" }, true],
  ["another partition", { params: '{"partition":"big"}' }, false],
  ["more cpus", { params: '{"cpus_per_task":4}' }, false],
  ["a time limit", { buildTimeout: 3600 }, false],
  ["another environment", { environment: ["A=1"] }, false],
  ["another idle time", { pilotIdleSec: 60 }, false],
  ["another scheduler endpoint", { endpoint: "slurm at http://other:6820" }, false],
])("%s: same resource key = %p", (_what, shape, same) => expect(keyOf(shape) === base).toBe(same));

const MIN = 60_000;
const now = 1_000_000_000_000;
test.each<[string, number | null, number | null, number, boolean]>([
  ["no time limit known", null, null, 60 * MIN, true],
  ["asks 60 min, 120 left", now + 120 * MIN, 240 * MIN, 60 * MIN, true],
  ["asks 60 min, 60 left (no margin)", now + 60 * MIN, 240 * MIN, 60 * MIN, false],
  ["asks none, over half of 240 left", now + 130 * MIN, 240 * MIN, 0, true],
  ["asks none, under half of 240 left", now + 100 * MIN, 240 * MIN, 0, false],
  ["asks none, limit unknown, margin left", now + 2 * MIN, null, 0, true],
  ["already past its limit", now - MIN, 240 * MIN, 0, false],
])("fits: %s", (_what, endsAt, limitMs, needMs, fits) => expect(pilotFits({ endsAt, limitMs }, needMs, now, MIN)).toBe(fits));

test.each<[number | null, number | null | undefined, number | null]>([
  [null, 60, null],
  [1000, null, null],
  [1000, undefined, null],
  [1000, 0, null],
  [1000, 2, (1000 + 120) * 1000],
])("ends at: start %p, limit %p min", (start, limit, end) => expect(pilotEndsAt(start, limit)).toBe(end));

test("need and idle-until", () => {
  expect(pilotNeedMs({ name: "x", script: "", workingDirectory: "/", environment: {}, timeLimitMinutes: 3 })).toBe(3 * MIN);
  expect(pilotNeedMs({ name: "x", script: "", workingDirectory: "/", environment: {} })).toBe(0);
  expect(pilotIdleUntil(now, 30, 5000)).toBe(now + 25_000);
});

test("agent option --pilot-idle round-trips; absent when off", () => {
  expect(agentArgs({ jobDir: "/j", collectGarbage: false, pilotIdleSec: 0 })).toEqual(["__agent", "/j"]);
  const args = agentArgs({ jobDir: "/j", collectGarbage: false, pilotIdleSec: 45 });
  expect(args).toEqual(["__agent", "/j", "--pilot-idle", "45"]);
  expect(parseAgentArgs(args.slice(1)).pilotIdleMs).toBe(45_000);
  expect(parseAgentArgs(["/j"]).pilotIdleMs).toBe(0);
});
