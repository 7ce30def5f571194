// Expected: for a build the cluster takes, Nix receives exactly `# accept\n<machine>\n` in ONE
// write and nothing before it; then the executor gets the inputs, the wanted outputs, the settings
// and the request, and its status is the hook's exit status. Its messages reach Nix as complete,
// well-typed `@nix` msgs (none above the verbosity), its build log goes to fd 4; an executor that
// throws becomes an error message and status 1. SIGTERM aborts ctx.signal and the executor's own
// status is still returned. (In-process, with a test executor: the shipped binary has none.)
import { expect, test } from "bun:test";
import type { BuildContext } from "../../src/hook/executor.ts";
import { confLoader, request, runInProcess, settingsBlob, tryReq, wellTyped } from "./harness.ts";

const blob = settingsBlob([["builders", ""], ["max-jobs", "0"], ["system", "x86_64-linux"]]);
const drv = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x.drv";
const accepted = { inputs: ["/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-dep", "/nix/store/cccccccccccccccccccccccccccccccc-src"], wantedOutputs: ["out", "dev"] };

test("the accept reply is one write, then the executor gets what Nix sent", async () => {
  let ctx: BuildContext | undefined;
  const r = await runInProcess({
    chunks: [blob, request(tryReq(drv, "x86_64-linux", ["nsh"]), accepted)],
    conf: confLoader({ "job-scheduler": "slurm", "slurm-api-host": "login1" }),
    executors: { slurm: async (c) => ((ctx = c), 0) },
  });
  expect(r.code).toBe(0);
  expect(r.writes).toEqual(["# accept\nslurm:login1\n"]);
  expect(ctx?.req).toEqual(tryReq(drv, "x86_64-linux", ["nsh"]));
  expect([ctx?.inputs, ctx?.wantedOutputs]).toEqual([accepted.inputs, accepted.wantedOutputs]);
  expect([...(ctx?.settings ?? [])]).toEqual([["builders", ""], ["max-jobs", "0"], ["system", "x86_64-linux"]]);
  expect([ctx?.machine, ctx?.verbosity, ctx?.signal.aborted]).toEqual(["slurm:login1", 3, false]);
});

test("the executor's status is the exit status, its log reaches Nix well-typed and filtered", async () => {
  const r = await runInProcess({
    chunks: [blob, request(tryReq(drv), accepted)],
    conf: confLoader({ "job-scheduler": "pbs", "pbs-host": "pbs1" }),
    verbosity: 3,
    executors: {
      pbs: async (c) => {
        c.log(3, "nsh: submitted job 17");
        c.log(4, "nsh: too chatty for verbosity 3");
        c.hookLog.warn('a "quoted"\nmultiline warning');
        c.buildLog("building x");
        c.hookLog.buildOutput("partial ");
        c.hookLog.buildOutput("line\n");
        return 100;
      },
    },
  });
  expect(r.code).toBe(100);
  expect(r.writes[0]).toBe("# accept\npbs:pbs1\n");
  expect(r.messages.every(wellTyped)).toBe(true);
  expect(r.messages.map((m) => [m.level, m.msg])).toEqual([
    [3, "nsh: submitted job 17"],
    [1, 'nsh: warning: a "quoted"\nmultiline warning'],
  ]);
  expect(r.buildLog).toBe("building x\npartial line\n");
});

test("an executor that throws: an error message naming the build, status 1", async () => {
  const r = await runInProcess({
    chunks: [blob, request(tryReq(drv), accepted)],
    conf: confLoader({ "job-scheduler": "slurm" }),
    executors: { slurm: async () => Promise.reject(new Error("slurmrestd said 401")) },
  });
  expect(r.code).toBe(1);
  expect(r.replies).toEqual(["# accept"]);
  expect(r.messages).toEqual([{ action: "msg", level: 0, msg: `nsh: error: building '${drv}' on 'slurm:localhost' failed: slurmrestd said 401` }]);
});

test("SIGTERM while building aborts ctx.signal; the executor cleans up and its status is returned", async () => {
  const term = new AbortController();
  let cleaned = false;
  const run = runInProcess({
    chunks: [blob, request(tryReq(drv), accepted)],
    conf: confLoader(),
    terminate: term.signal,
    executors: {
      slurm: (c) =>
        new Promise((resolve) => {
          c.signal.addEventListener("abort", () => {
            cleaned = true; // e.g. scancel
            resolve(143);
          });
        }),
    },
  });
  setTimeout(() => term.abort(), 50);
  // The executor ends only on abort: without it the run never ends (the bound is for a clear failure).
  const r = await Promise.race([run, Bun.sleep(30_000).then(() => undefined)]);
  expect(r && [r.code, cleaned]).toEqual([143, true]);
});
