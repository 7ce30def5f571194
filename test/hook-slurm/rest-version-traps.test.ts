// Expected, on the Slurm that NSH_LAB_SUITE picks (22.05, 24.11 or 26.05), against its real slurmrestd:
//   - negotiation picks the newest API version the server serves (v0.0.45 on 26.05, v0.0.42 on 24.11,
//     v0.0.38 on 22.05);
//   - a corrupted token is refused before any job is submitted: prepare() fails as an authentication
//     failure, and doctor() reports the token as not accepted (24.11+ answer its ping with HTTP 200);
//     a good token passes doctor() throughout;
//   - a job submitted with the negotiated version's shapes (v0.0.45 on 26.05) runs, with its
//     environment, and completes with exit code 0;
//   - a job slurmctld does not know is "unknown" (26.05 answers 404), and cancelling it is no error;
//   - a job cancelled while pending ends "cancelled" without an exit code (26.05 reports 0).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { SchedulerError } from "../../src/schedulers/scheduler.ts";
import { SlurmRestScheduler } from "../../src/schedulers/slurm-rest.ts";
import { startSlurmLab } from "../lab/slurm.ts";
import type { SlurmLab } from "../lab/slurm-types.ts";
import { until } from "./helpers.ts";

let lab: SlurmLab;
let token: string;
beforeAll(async () => {
  lab = await startSlurmLab({ name: "rest-traps" });
  token = await lab.token("root", 3600);
}, 180000);
afterAll(async () => {
  await lab?.cleanup();
});

const sched = (t = token) => new SlurmRestScheduler({ host: "127.0.0.1", port: lab.restPort, token: t, user: "root" });
/** Still a well-formed, unexpired JWT: only the signature is wrong, so only slurmctld can tell. */
const corrupted = () => `${token.slice(0, -6)}${token.slice(-6) === "AAAAAA" ? "BBBBBB" : "AAAAAA"}`;

test("negotiation picks the newest served version", async () => {
  const n = await sched().negotiate();
  console.log(`${lab.slurmVersion}: served ${lab.apiVersions.join(", ")}; nsh chose ${n.version} (${n.via})`);
  expect(n.version as string).toBe(lab.apiVersion);
}, 60000);

test("a job submitted with the negotiated version's shapes completes", async () => {
  const s = sched();
  const out = `${lab.jobsDir}/v-${Date.now()}.out`;
  const { id } = await s.submit({
    name: "shapes",
    script: "#!/bin/sh\necho \"env=$NSH_SHAPES\"\n",
    workingDirectory: lab.jobsDir,
    environment: { PATH: "/usr/bin:/bin", NSH_SHAPES: "yes" },
    stdout: out,
    timeLimitMinutes: 5,
  });
  const st = await until(async () => {
    const x = await s.status(id);
    return x.state === "completed" || x.state === "failed" ? x : undefined;
  }, 30000);
  console.log(`${(await s.negotiate()).version}: job ${id} ${st?.state} exit ${st?.exitCode}`);
  expect(st?.state).toBe("completed");
  expect(st?.exitCode).toBe(0);
  expect(await Bun.file(out).text()).toContain("env=yes");
}, 60000);

test("a corrupted token fails prepare() and doctor() as an authentication failure", async () => {
  const e = await sched(corrupted()).prepare().then(() => undefined, (x: unknown) => x);
  expect(e).toBeInstanceOf(SchedulerError);
  expect((e as SchedulerError).kind).toBe("auth");
  expect((e as Error).message).toMatch(/authentication failed: check slurm-jwt-token/);
  const checks = await sched(corrupted()).doctor();
  console.log(checks.map((c) => `${c.ok ? "ok" : "FAIL"} ${c.what}: ${c.detail}`).join("\n"));
  expect(checks.some((c) => !c.ok && /authentication failed/.test(c.detail))).toBe(true);
  const good = await sched().doctor();
  expect(good.every((c) => c.ok)).toBe(true);
  expect(good.map((c) => c.what)).toContain("JWT accepted");
}, 60000);

test("an unknown job is unknown, and cancelling it is no error", async () => {
  const s = sched();
  const st = await s.status("999999");
  expect(st.state).toBe("unknown");
  await s.cancel("999999");
}, 60000);

test("a job cancelled while pending is cancelled, without an exit code", async () => {
  const s = sched();
  const { id } = await s.submit({
    name: "held",
    script: "#!/bin/sh\nsleep 300\n",
    workingDirectory: lab.jobsDir,
    environment: { PATH: "/usr/bin:/bin" },
    extra: { hold: true },
  });
  expect((await s.status(id)).state).toBe("pending");
  await s.cancel(id);
  const st = await until(async () => {
    const x = await s.status(id);
    return x.state === "cancelled" ? x : undefined;
  }, 20000);
  console.log(`cancelled pending job ${id}: exitCode ${st?.exitCode} signal ${st?.signal}`);
  expect(st?.state).toBe("cancelled");
  expect(st?.exitCode).toBeNull();
}, 60000);
