import { expect, test } from "bun:test";
import { parseDerivation } from "../../src/nix/derivation.ts";
import { JOB_TIME_MARGIN_MINUTES } from "../../src/hook/job-end.ts";
import { buildLimits, drvName, firstHost, jobScript, jobSpec, jsonObjectAttr } from "../../src/hook/job-plan.ts";

const drvText = (env: [string, string][]) =>
  `Derive([("out","/nix/store/ffffffffffffffffffffffffffffffff-x","","")],[],[],"x86_64-linux","/bin/sh",["-c","echo"],[${env.map(([k, v]) => `(${JSON.stringify(k)},${JSON.stringify(v)})`).join(",")}])`;

test.each([
  ["/nix/store/ffffffffffffffffffffffffffffffff-hello-2.12.drv", "hello-2.12"],
  ["/tmp/s/ffffffffffffffffffffffffffffffff-a.b.drv", "a.b"],
])("drv name of %p", (p, n) => expect(drvName(p)).toBe(n));

test.each([
  ["vm", "vm"],
  ["node[3-5,9]", "node3"],
  ["gpu1,gpu2", "gpu1"],
  ["c[07]", "c07"],
])("first host of %p", (l, h) => expect(firstHost(l)).toBe(h));

test("the job script runs the agent, quoted, and nothing else", () => {
  const script = jobScript("/home/u/nsh state/bin/nsh-1", ["__agent", "/s t/jobs/k"]);
  expect(script).toContain("exec '/home/u/nsh state/bin/nsh-1' __agent '/s t/jobs/k'");
  expect(script.split("\n").filter((l) => l && !l.startsWith("#"))).toHaveLength(1);
});

test("spec: directory, agent args, time limit from Nix's timeout (plus the margin), extra params from the derivation", () => {
  const drv = parseDerivation(drvText([["extraSlurmParams", '{"cpus_per_task":4}']]));
  const s = jobSpec({ drvPath: "/nix/store/ffffffffffffffffffffffffffffffff-x.drv", drv, stateDir: "/st", key: "k1", agentPath: "/st/bin/nsh-a", remoteStore: "/local/store", nixBinDir: "", collectGarbage: true, buildTimeout: 3601, paramsAttr: "extraSlurmParams" });
  // Slurm opens the output file before the script runs: it lives in the parent, which exists.
  expect(s.workingDirectory).toBe("/st/jobs");
  expect(s.stdout).toBe("/st/jobs/k1.out");
  expect(s.script).toContain("exec /st/bin/nsh-a __agent /st/jobs/k1 --remote-store /local/store --collect-garbage");
  expect(s.timeLimitMinutes).toBe(61 + JOB_TIME_MARGIN_MINUTES);
  expect(s.extra).toEqual({ cpus_per_task: 4 });
  expect(s.name).toBe("nsh-x");
});

test("no Nix timeout: no time limit (the cluster's default applies)", () => {
  const drv = parseDerivation(drvText([]));
  const s = jobSpec({ drvPath: "/nix/store/ffffffffffffffffffffffffffffffff-x.drv", drv, stateDir: "/st", key: "k1", agentPath: "/st/bin/nsh-a", remoteStore: "auto", nixBinDir: "", collectGarbage: false, buildTimeout: 0, paramsAttr: "extraSlurmParams" });
  expect("timeLimitMinutes" in s).toBe(false);
});

test.each([
  ['{"cpus_per_task":', /not valid JSON/],
  ["[1,2]", /must be a JSON object/],
])("a malformed extraSlurmParams %p names the derivation", (v, msg) => {
  const drv = parseDerivation(drvText([["extraSlurmParams", v]]));
  expect(() => jsonObjectAttr(drv, "/nix/store/x.drv", "extraSlurmParams")).toThrow(msg);
  expect(() => jsonObjectAttr(drv, "/nix/store/x.drv", "extraSlurmParams")).toThrow(/\/nix\/store\/x\.drv: attribute extraSlurmParams/);
});

test("limits from the settings blob", () =>
  expect(buildLimits(new Map([["max-silent-time", "30"], ["timeout", "0"], ["max-build-log-size", "x"]]))).toEqual({ maxSilentTime: 30, buildTimeout: 0, maxLogSize: 0 }));

test("job-environment words", async () => {
  const { parseJobEnvironment } = await import("../../src/hook/job-plan.ts");
  expect(parseJobEnvironment(["NIX_CONF_DIR=/etc/nix", "A=b=c"])).toEqual({ NIX_CONF_DIR: "/etc/nix", A: "b=c" });
  expect(() => parseJobEnvironment(["oops"])).toThrow(/job-environment expects NAME=VALUE words, got 'oops'/);
});
