// SlurmRestScheduler against a real slurmrestd (the private lab, JWT: Slurm 22.05, or 24.11 / 26.05 with
// NSH_LAB_SUITE=trixie|sid), plus a few fake HTTP servers for replies a healthy slurmrestd never gives
// (HTML, 401, silence). What differs by release is Slurm's (served API versions, HTTP 500 → 511 for a
// refused token from 24.11); what nsh makes of it is asserted on every release.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { defaultNshConfig } from "../../src/config/nsh-conf.ts";
import { isTerminal, type JobSpec, type JobStatus } from "../../src/schedulers/scheduler.ts";
import { jwtToken, SlurmRestScheduler, type SlurmRestOptions } from "../../src/schedulers/slurm-rest.ts";
import { noVal, SUPPORTED_VERSIONS } from "../../src/schedulers/slurm-rest-shapes.ts";
import { startSlurmLab, type SlurmLab } from "../lab/slurm.ts";
import { thrown } from "./thrown.ts";

let lab: SlurmLab;
let token: string;
const logs: string[] = [];
const secrets: string[] = [];
const report: string[] = [];
const note = (s: string): void => {
  report.push(s);
  console.log(`[slurm-rest] ${s}`);
};

/** The newest version both this slurmrestd serves and nsh knows: what negotiation must pick. */
const newest = (): string => [...SUPPORTED_VERSIONS].reverse().find((v) => lab.apiVersions.includes(v))!;
/** A version nsh knows that this slurmrestd does not serve. */
const notServed = (): string => SUPPORTED_VERSIONS.find((v) => !lab.apiVersions.includes(v))!;
/** "slurm 22.05.8" → "22.05.8" */
const release = (): string => lab.slurmVersion.split(" ").pop()!;
/** slurmctld's status for a refused token, as slurmrestd passes it on: 500 on 22.05, 511 from 24.11 (seen: 24.11, 26.05). */
const refusedTokenStatus = (): number => {
  const [major, minor] = lab.slurmVersionNumbers;
  return major! * 100 + minor! >= 2411 ? 511 : 500;
};

const sched = (o: Partial<SlurmRestOptions> = {}): SlurmRestScheduler =>
  new SlurmRestScheduler({ host: "127.0.0.1", port: lab.restPort, token, user: "root", log: (l) => logs.push(l), ...o });

const spec = (name: string, script: string, more: Partial<JobSpec> = {}): JobSpec => ({
  name,
  script,
  workingDirectory: lab.jobsDir,
  environment: { PATH: "/usr/local/bin:/usr/bin:/bin", NSH_TEST: name },
  stdout: path.join(lab.jobsDir, `${name}-%j.out`),
  stderr: path.join(lab.jobsDir, `${name}-%j.err`),
  timeLimitMinutes: 5,
  ...more,
});

/** Poll every 20 ms until `done`; returns the last status and the states seen in order. */
async function waitFor(s: SlurmRestScheduler, id: string, done: (st: JobStatus) => boolean, timeoutMs = 30_000): Promise<{ st: JobStatus; seen: string[] }> {
  const seen: string[] = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const st = await s.status(id);
    if (seen[seen.length - 1] !== st.state) seen.push(st.state);
    if (done(st) || Date.now() > deadline) return { st, seen };
    await Bun.sleep(20);
  }
}

/** Live processes of the job submitted as `name` (its environment carries NSH_TEST=<name>). */
function jobProcesses(name: string): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (fs.readFileSync(`/proc/${d}/environ`, "utf8").split("\0").includes(`NSH_TEST=${name}`) && !/^State:\s+Z/m.test(fs.readFileSync(`/proc/${d}/status`, "utf8"))) out.push(Number(d));
    } catch {}
  }
  return out;
}


const freePort = (): Promise<number> =>
  new Promise((resolve) => {
    const srv = net.createServer().listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });

beforeAll(async () => {
  lab = await startSlurmLab({ name: "rest" });
  token = await lab.token("root");
  secrets.push(token);
});

afterAll(async () => {
  await lab?.cleanup();
  for (const line of logs) for (const s of secrets) expect(line).not.toContain(s);
  if (report.length > 0) console.log(`\n[slurm-rest] summary\n  ${report.join("\n  ")}`);
});

describe("SlurmRestScheduler on the lab's Slurm", () => {
  test("negotiation picks the newest version nsh knows (v0.0.38 on 22.05) from /openapi/v3, or by probing pings", async () => {
    const s = sched();
    expect(s.describe()).toContain("API auto (not negotiated yet)");
    const n = await s.negotiate();
    expect(n).toMatchObject({ version: newest(), via: "openapi", served: lab.apiVersions, release: release() });
    expect(s.describe()).toBe(`slurm REST at http://127.0.0.1:${lab.restPort}, API ${newest()} (Slurm ${release()}), user root`);
    const probes: string[] = [];
    const noOpenapi = sched({
      fetch: (url, init) => {
        probes.push(new URL(url).pathname);
        return url.endsWith("/openapi/v3") ? Promise.resolve(new Response("no", { status: 404 })) : fetch(url, init);
      },
    });
    const p = await noOpenapi.negotiate();
    expect(p).toMatchObject({ version: newest(), via: "ping-probe", served: [newest()] });
    // newest first, down to the first one served (on 22.05: v0.0.44 … v0.0.38), then the chosen one's ping
    const probed = [...SUPPORTED_VERSIONS].reverse().filter((v) => v >= newest());
    expect(probes).toEqual(["/openapi/v3", ...probed.map((v) => `/slurm/${v}/ping`), `/slurm/${newest()}/ping`]);
    const forced = await sched({ apiVersion: newest().slice(1) }).negotiate();
    expect(forced).toMatchObject({ version: newest(), via: "forced" });
    note(`negotiation: GET /openapi/v3 ${n.discoveryMs.toFixed(1)} ms + ping ${n.pingMs.toFixed(1)} ms; ` +
      `ping probing newest->oldest ${p.discoveryMs.toFixed(1)} ms + ping ${p.pingMs.toFixed(1)} ms; forced: ping ${forced.pingMs.toFixed(1)} ms`);
  });

  test("a remembered version: one ping instead of the OpenAPI document; forgotten when no longer served", async () => {
    const seen: string[] = [];
    const fetchLogged = (url: string, init: RequestInit) => (seen.push(new URL(url).pathname), fetch(url, init));
    let kept: string | undefined;
    const memo = { get: () => kept, set: (v: string) => void (kept = v), forget: () => void (kept = undefined) };
    const first = await sched({ fetch: fetchLogged, rememberedVersion: memo }).negotiate();
    expect(first.via).toBe("openapi");
    expect(kept).toBe(newest());
    seen.length = 0;
    const second = await sched({ fetch: fetchLogged, rememberedVersion: memo }).negotiate();
    expect(second).toMatchObject({ version: newest(), via: "remembered" });
    expect(seen).toEqual([`/slurm/${newest()}/ping`]);
    // A version this slurmrestd does not serve (it was upgraded): found out again, and remembered.
    kept = notServed();
    seen.length = 0;
    const third = await sched({ fetch: fetchLogged, rememberedVersion: memo }).negotiate();
    expect(third).toMatchObject({ version: newest(), via: "openapi" });
    expect(seen).toEqual([`/slurm/${notServed()}/ping`, "/openapi/v3", `/slurm/${newest()}/ping`]);
    expect(kept).toBe(newest());
  });

  test("a script that writes a file and exits 0 -> completed, exit 0", async () => {
    const s = sched();
    await s.negotiate();
    const marker = path.join(lab.jobsDir, `hello-${Date.now()}.txt`);
    const t0 = performance.now();
    const { id } = await s.submit(spec("hello", `#!/bin/sh\necho "$NSH_TEST $SLURM_JOB_ID" > ${marker}\n`));
    const submitMs = performance.now() - t0;
    const { st, seen } = await waitFor(s, id, (x) => isTerminal(x.state));
    const doneMs = performance.now() - t0;
    expect(st).toMatchObject({ id, state: "completed", exitCode: 0, signal: null, nodes: lab.nodeName, reason: null });
    expect(st.startTime).toBeGreaterThan(0);
    expect(st.endTime).toBeGreaterThanOrEqual(st.startTime!);
    expect(fs.readFileSync(marker, "utf8")).toBe(`hello ${id}\n`);
    note(`submit call ${submitMs.toFixed(1)} ms; submit -> completed (status every 20 ms) ${Math.round(doneMs)} ms; states ${seen.join(">")}`);
  });

  test("extra params reach Slurm: derivation < setting; v0.0.44-style numbers work on every version", async () => {
    const s = sched({ extraParams: { comment: "from-setting", memory_per_node: { set: true, infinite: false, number: 96 } } });
    const job = spec("extra", "#!/bin/sh\ntrue\n", { extra: { cpus_per_task: 2, comment: "from-derivation", memory_per_node: 64, time_limit: { infinite: true } } });
    const { id } = await s.submit(job);
    await waitFor(s, id, (x) => isTerminal(x.state));
    const show = await lab.run(["scontrol", "show", "job", id]);
    expect(show.stdout).toContain("Comment=from-setting");
    expect(show.stdout).toMatch(/CPUs\/Task=2\b/);
    expect(show.stdout).toMatch(/MinMemoryNode=96M\b/);
    expect(show.stdout).toContain("TimeLimit=UNLIMITED");
    const r = await lab.rest("GET", `/slurm/${newest()}/job/${id}`);
    expect(r.json.jobs[0]).toMatchObject({ comment: "from-setting" });
    expect(noVal(r.json.jobs[0].memory_per_node)).toBe(96); // a plain number up to v0.0.39, {set, number} after
  });

  test("a failing script -> failed with its exit code", async () => {
    const s = sched();
    const { id } = await s.submit(spec("exit7", "#!/bin/sh\nexit 7\n"));
    const { st } = await waitFor(s, id, (x) => isTerminal(x.state));
    expect(st).toMatchObject({ state: "failed", exitCode: 7, signal: null, reason: "NonZeroExitCode", rawState: ["FAILED"] });
  });

  test("cancel of a pending and of a running job -> cancelled, its processes gone; cancelling again is fine", async () => {
    const s = sched();
    const tag = `long-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
    const held = await s.submit(spec("held", "#!/bin/sh\ntrue\n", { extra: { hold: true } }));
    const running = await s.submit(spec(tag, "#!/bin/sh\nexec sleep 300\n"));
    const pend = await s.status(held.id);
    expect(pend).toMatchObject({ state: "pending", reason: "JobHeldUser", nodes: null, startTime: null, exitCode: null });
    expect((await waitFor(s, running.id, (x) => x.state === "running")).st.state).toBe("running");
    // The check below can see the job's processes (Slurm says RUNNING a moment before its script runs).
    const t00 = Date.now();
    while (jobProcesses(tag).length === 0 && Date.now() - t00 < 30_000) await Bun.sleep(100);
    expect(jobProcesses(tag).length).toBeGreaterThan(0);
    const times: number[] = [];
    const again: string[] = [];
    for (const { id } of [held, running]) {
      const t0 = performance.now();
      await s.cancel(id);
      // Slurm marks a cancelled job at once; the bound is room for a loaded machine (the job sleeps 300 s).
      const { st } = await waitFor(s, id, (x) => x.state === "cancelled", 30_000);
      times.push(performance.now() - t0);
      expect(st.state).toBe("cancelled");
      const before = logs.length;
      await s.cancel(id); // already done: not an error
      again.push(logs.slice(before).join(" "));
    }
    // What a user relies on: cancelled (never reported as succeeded), and the job's processes gone. Which
    // signal Slurm reports for it (15, or 9 after KillWait) and its exit code vary by version and load.
    expect((await s.status(running.id)).state).toBe("cancelled");
    const t1 = Date.now();
    while (jobProcesses(tag).length > 0 && Date.now() - t1 < 60_000) await Bun.sleep(200);
    expect(jobProcesses(tag)).toEqual([]);
    note(`cancel -> cancelled: pending ${Math.round(times[0]!)} ms, running ${Math.round(times[1]!)} ms; processes gone ${Date.now() - t1} ms later; cancelling again: ${again.join("; ")}`);
  }, 120_000);

  test("an unknown job is 'unknown'; a refused submission carries Slurm's errors", async () => {
    const s = sched();
    const unknown = await s.status("999999");
    expect(unknown.state).toBe("unknown");
    // 22.05: "… (Invalid job id specified: Unable to find JobId=999999 (error 2017) [slurm_load_job])"
    expect(unknown.reason).toStartWith("slurmctld does not know job 999999 (");
    const e = await thrown(s.submit(spec("badpart", "#!/bin/sh\ntrue\n", { extra: { partition: "nosuchpartition" } })));
    expect(e.kind).toBe("rejected");
    expect(e.message).toStartWith(`Slurm refused the job (${newest()}): Invalid partition name specified`);
    const badKey = s.submit(spec("badkey", "#!/bin/sh\ntrue\n", { extra: { no_such_field: 1 } }));
    if (refusedTokenStatus() === 500) {
      expect((await thrown(badKey)).message).toContain('Unknown key "no_such_field"');
    } else {
      // slurmrestd from 24.11 on ignores a key its parser does not know: the job is accepted as without it.
      const { id } = await badKey;
      await s.cancel(id);
      note(`slurm ${release()}: an unknown key in the job description was ignored (job ${id})`);
    }
  });

  test("bad tokens -> the authentication error, without the token's text", async () => {
    const forged = (await lab.token("root")).replace(/.{6}$/, "AAAAAA");
    const expired = await lab.token("root", -60);
    secrets.push(forged, expired);
    const t0 = performance.now();
    const e = await thrown(sched({ token: forged }).submit(spec("forged", "#!/bin/sh\ntrue\n")));
    const forgedMs = performance.now() - t0;
    expect(e.kind).toBe("auth");
    // 22.05 refuses the ping; 24.11+ answer it (controller "down") and refuse the token check after it.
    expect(e.message).toStartWith("authentication failed: check slurm-jwt-token (token from slurm-jwt-token, user root: ");
    expect(e.message).toContain(`HTTP ${refusedTokenStatus()}`);
    const x = await thrown(sched({ token: expired, tokenSource: "SLURM_JWT" }).status("1"));
    expect(x.message).toMatch(/^authentication failed: check slurm-jwt-token \(token from SLURM_JWT: it expired at \d{4}-/);
    const g = await thrown(sched({ token: "garbage" }).negotiate());
    expect(g.message).toContain("it is not a JWT");
    const other = await startSlurmLab({ name: "rest2", waitForScheduler: false });
    try {
      const foreign = await other.token("root");
      secrets.push(foreign);
      expect((await thrown(sched({ token: foreign }).negotiate())).kind).toBe("auth");
    } finally {
      await other.cleanup();
    }
    for (const err of [e, x, g]) for (const secret of [forged, expired]) expect(`${err.message}${err.details.join("")}${err.stack}`).not.toContain(secret);
    // A token that expires while a job runs: 22.05 then says "Unable to find JobId"; we say why.
    const short = await lab.token("root", 2);
    secrets.push(short);
    const brief = sched({ token: short });
    const { id } = await brief.submit(spec("short", "#!/bin/sh\nsleep 30\n"));
    await Bun.sleep(3200); // slurmctld refuses a token once now > exp (measured: from about exp + 1 s)
    const late = await thrown(brief.status(id));
    expect(late.message).toMatch(/^authentication failed: check slurm-jwt-token \(token from slurm-jwt-token: it expired at /);
    await sched().cancel(id);
    const s = sched();
    expect(`${Bun.inspect(s)}${JSON.stringify(s)}${s.describe()}`).not.toContain(token);
    note(`forged token -> auth error in ${Math.round(forgedMs)} ms: ${e.message}`);
  });

  test("slurmrestd unreachable, not JSON, 401, silent", async () => {
    const port = await freePort();
    const t0 = performance.now();
    const e = await thrown(sched({ port }).negotiate());
    expect(e.kind).toBe("unreachable");
    expect(e.message).toStartWith(`slurmrestd not reachable at 127.0.0.1:${port} (`);
    note(`unreachable: ${e.message} after ${(performance.now() - t0).toFixed(1)} ms`);
    const html = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("<html>proxy error</html>", { status: 502 }) });
    const deny = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("Authentication failure", { status: 401 }) });
    const silent = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Promise<Response>(() => {}) });
    try {
      const h = await thrown(sched({ port: html.port!, apiVersion: "v0.0.40" }).status("5"));
      expect(h).toMatchObject({ kind: "protocol", message: `slurmrestd at 127.0.0.1:${html.port} sent a non-JSON reply to GET /slurm/v0.0.40/ping (HTTP 502): <html>proxy error</html>` });
      const d = await thrown(sched({ port: deny.port! }).negotiate());
      expect(d.message).toBe("authentication failed: check slurm-jwt-token (token from slurm-jwt-token, user root: slurmrestd answered HTTP 401)");
      const q = await thrown(sched({ port: silent.port!, requestTimeoutMs: 300 }).negotiate());
      expect(q.message).toBe(`slurmrestd at 127.0.0.1:${silent.port} did not answer GET /openapi/v3 within 300 ms`);
    } finally {
      for (const srv of [html, deny, silent]) srv.stop(true);
    }
  });

  test("forcing a version", async () => {
    const unknown = await thrown(sched({ apiVersion: "v0.0.99" }).negotiate());
    expect(unknown).toMatchObject({ kind: "version", message: expect.stringContaining("slurm-api-version 'v0.0.99' is not a version nsh knows (nsh supports v0.0.38") });
    const absent = await thrown(sched({ apiVersion: notServed() }).submit(spec("x", "#!/bin/sh\ntrue\n")));
    // on 22.05: "slurm-api-version v0.0.39 is not served (slurmrestd serves v0.0.36, v0.0.37, v0.0.38; nsh supports v0.0.38, …)"
    expect(absent.message).toBe(
      `slurm-api-version ${notServed()} is not served (slurmrestd serves ${lab.apiVersions.join(", ")}; nsh supports ${SUPPORTED_VERSIONS.join(", ")})`,
    );
  });

  // Last: it stops slurmctld for a while. A refused token fails in ms, a silent slurmctld only
  // after its MessageTimeout (10 s here), with the same error text; the time tells them apart.
  test("slurmctld not answering is not reported as a token problem", async () => {
    process.kill(lab.pids.slurmctld, "SIGSTOP");
    try {
      const t0 = performance.now();
      const e = await thrown(sched().negotiate());
      expect(e.kind).toBe("unreachable");
      // 22.05: the ping fails after MessageTimeout; 24.11+: the ping says "down", the token check times out.
      expect(e.message).toStartWith("slurmctld did not answer ");
      expect(e.message).toContain(`slurmrestd at 127.0.0.1:${lab.restPort}`);
      note(`slurmctld stopped: ${e.message} (${Math.round(performance.now() - t0)} ms)`);
    } finally {
      process.kill(lab.pids.slurmctld, "SIGCONT");
    }
  });
});

describe("jwtToken", () => {
  const cfg = (token = "", file = "") => ({ ...defaultNshConfig(), "slurm-jwt-token": token, "slurm-jwt-token-file": file });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nsh-jwt-"));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test("setting, then file, then SLURM_JWT; file permissions are checked", () => {
    const f = path.join(dir, "tok");
    fs.writeFileSync(f, "SLURM_JWT=eyJfile.x.y\n", { mode: 0o600 });
    expect(jwtToken(cfg("eyJset.x.y", f), { SLURM_JWT: "eyJenv.x.y" })).toEqual({ token: "eyJset.x.y", source: "slurm-jwt-token", warnings: [] });
    expect(jwtToken(cfg("", f), { SLURM_JWT: "eyJenv.x.y" })).toEqual({ token: "eyJfile.x.y", source: `slurm-jwt-token-file ${f}`, warnings: [] });
    fs.chmodSync(f, 0o644);
    expect(jwtToken(cfg("", f), {}).warnings).toEqual([`slurm-jwt-token-file ${f} is readable by group and others (mode 0644); chmod 600 it`]);
    fs.chmodSync(f, 0o640);
    expect(jwtToken(cfg("", f), {}).warnings[0]).toContain("readable by group (mode 0640)");
    expect(jwtToken(cfg(), { SLURM_JWT: " eyJenv.x.y\n" })).toEqual({ token: "eyJenv.x.y", source: "SLURM_JWT", warnings: [] });
  });

  test("errors name all three sources; unreadable and empty files are errors", () => {
    expect(() => jwtToken(cfg(), {})).toThrow("no JWT for slurmrestd: set slurm-jwt-token or slurm-jwt-token-file in nsh.conf, or SLURM_JWT in the environment");
    expect(() => jwtToken(cfg("", path.join(dir, "missing")), {})).toThrow(`slurm-jwt-token-file ${path.join(dir, "missing")}: cannot read it (ENOENT)`);
    fs.writeFileSync(path.join(dir, "empty"), "\n", { mode: 0o600 });
    expect(() => jwtToken(cfg("", path.join(dir, "empty")), {})).toThrow("is empty");
  });

  test("fromConfig reads host, port, version, user and extra params", () => {
    const c = { ...cfg("eyJhbGciOiJIUzI1NiJ9.eyJzdW4iOiJhbGljZSJ9.x"), "slurm-api-host": "h", "slurm-api-port": 7, "slurm-api-version": "v0.0.40" };
    expect(SlurmRestScheduler.fromConfig(c, {}).describe()).toBe("slurm REST at http://h:7, API v0.0.40 (not negotiated yet), user alice");
    expect(SlurmRestScheduler.fromConfig({ ...c, "slurm-user": "bob" }, {}).user).toBe("bob");
  });
});
