// Self-test of the private Slurm lab: CLI and REST (JWT) job submission,
// cancel, auth errors, parallel capacity, two labs side by side, cleanup.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { findByMarker, isAlive, waitUntil } from "../lab/proc.ts";
import { ensureSlurm, startSlurmLab, waitJobState, type SlurmLab } from "../lab/slurm.ts";
import { V, holdersOf, median, restState, restSubmit, restWait, show, slurmProcesses, submitBody } from "./slurm-helpers.ts";

const labs: SlurmLab[] = [];
const report: string[] = [];
const note = (s: string): void => {
  report.push(s);
  console.log(`[slurm-lab] ${s}`);
};

let before: Map<number, string>;

/** pid, state and parent of a process, for failure messages. */
function procLine(pid: number): string {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "latin1");
    const [state, ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return `pid ${pid} state ${state} ppid ${ppid}`;
  } catch {
    return `pid ${pid} gone`;
  }
}
let lab: SlurmLab;

beforeAll(async () => {
  await ensureSlurm();
  before = slurmProcesses();
  const t0 = Date.now();
  lab = await startSlurmLab({ name: "self" });
  labs.push(lab);
  note(
    `lab start ${Date.now() - t0} ms: daemons up (munged, slurmctld, slurmd idle, slurmrestd answering) after ` +
      `${lab.startMs.daemons} ms, first scheduling pass after ${lab.startMs.ready} ms (packages already installed)`,
  );
});

afterAll(async () => {
  for (const l of labs) await l.cleanup();
  if (report.length > 0) console.log(`\n[slurm-lab] summary\n  ${report.join("\n  ")}`);
});

describe("slurm lab", () => {
  test("layout, pids, versions", () => {
    for (const [name, pid] of Object.entries(lab.pids)) {
      expect(pid, name).toBeGreaterThan(0);
      expect(isAlive(pid), name).toBe(true);
    }
    expect(lab.env.SLURM_CONF).toBe(lab.confFile);
    expect(fs.existsSync("/etc/slurm/slurm.conf")).toBe(false); // everything below works from SLURM_CONF alone
    expect(lab.apiVersions).toContain(V);
    expect(lab.restUrl).toBe(`http://127.0.0.1:${lab.restPort}`);
    expect(fs.readFileSync(`/proc/${lab.pids.slurmrestd}/status`, "utf8")).toMatch(/^Uid:\s+65534\b/m);
    const conf = fs.readFileSync(lab.confFile, "utf8");
    expect(conf).toContain(`SlurmctldPort=${lab.ctldPort}`);
    expect(conf).toContain(`NodeName=${lab.nodeName} `);
    note(`apiVersions ${lab.apiVersions.join(",")}; ports ctld ${lab.ctldPort} slurmd ${lab.slurmdPort} rest ${lab.restPort}`);
  });

  test("sbatch --wrap through env runs to COMPLETED; squeue/scontrol/scancel use SLURM_CONF", async () => {
    const t0 = performance.now();
    const r = await lab.run(["sbatch", "--parsable", "--wrap", "echo hi"]);
    expect(r.code, show(r)).toBe(0);
    const id = Number(r.stdout.trim());
    expect(id).toBeGreaterThan(0);
    const state = await waitJobState(lab, id, ["COMPLETED", "FAILED", "CANCELLED"]);
    note(`CLI sbatch -> COMPLETED (squeue polling) ${Math.round(performance.now() - t0)} ms`);
    expect(state).toBe("COMPLETED");
    expect(fs.readFileSync(path.join(lab.jobsDir, `slurm-${id}.out`), "utf8")).toBe("hi\n");
    const sc = await lab.run(["scontrol", "show", "job", String(id)]);
    expect(sc.stdout).toContain("JobState=COMPLETED");

    const long = await lab.run(["sbatch", "--parsable", "--wrap", "sleep 300"]);
    expect(long.code, show(long)).toBe(0);
    const lid = long.stdout.trim();
    expect(await waitJobState(lab, lid, ["RUNNING"])).toBe("RUNNING");
    const c = await lab.run(["scancel", lid]);
    expect(c.code, show(c)).toBe(0);
    expect(await waitJobState(lab, lid, ["CANCELLED"])).toBe("CANCELLED");
  });

  test("self-minted and scontrol tokens are both accepted for root", async () => {
    for (const tok of [await lab.token(), await lab.scontrolToken("root", 600)]) {
      const r = await lab.rest("GET", `/slurm/${V}/ping`, { token: tok });
      expect(r.status, r.text).toBe(200);
    }
  });

  test("ping and diag", async () => {
    const p = await lab.rest("GET", `/slurm/${V}/ping`);
    expect(p.status, p.text).toBe(200);
    expect(p.json.pings[0].ping).toBe("UP");
    expect(p.json.meta.Slurm.release).toMatch(/^\d+\.\d+\.\d+/);
    const d = await lab.rest("GET", `/slurm/${V}/diag`);
    expect(d.status, d.text).toBe(200);
    expect(typeof d.json.statistics.jobs_submitted).toBe("number");
    note(`ping ${p.durationMs.toFixed(1)} ms, diag ${d.durationMs.toFixed(1)} ms; Slurm ${p.json.meta.Slurm.release}`);
  });

  test("REST submit -> COMPLETED (states, latency)", async () => {
    const lat: number[] = [];
    let states: string[] = [];
    let submitMs = 0;
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const id = await restSubmit(lab, `rest${i}`, `#!/bin/sh\necho "rest $SLURM_JOB_ID $(id -un)"\n`);
      submitMs = performance.now() - t0;
      states = await restWait(lab, id, ["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"]);
      lat.push(performance.now() - t0);
      expect(states[states.length - 1]).toBe("COMPLETED");
      const { exit, job } = await restState(lab, id);
      expect(exit).toBe(0);
      expect(job.user_name).toBe("root");
      expect(fs.readFileSync(path.join(lab.jobsDir, `rest${i}-${id}.out`), "utf8")).toBe(`rest ${id} root\n`);
    }
    note(`REST submit call ${submitMs.toFixed(1)} ms; submit->COMPLETED (GET every 20 ms) ` +
      `median ${Math.round(median(lat))} ms, min ${Math.round(Math.min(...lat))}, max ${Math.round(Math.max(...lat))} ` +
      `(n=5 sequential); states seen ${states.join(">")}`);
  });

  test("REST exit code and an unknown job", async () => {
    const id = await restSubmit(lab, "exit3", "#!/bin/sh\nexit 3\n");
    await restWait(lab, id, ["FAILED", "COMPLETED"]);
    const { state, exit } = await restState(lab, id);
    expect(state).toBe("FAILED");
    expect(exit).toBe(3 << 8); // v0.0.38: raw wait status
    const u = await lab.rest("GET", `/slurm/${V}/job/999999`);
    expect(u.status).toBe(500);
    expect(u.json.errors[0].error_number).toBe(2017);
  });

  test("REST DELETE cancels a running job and its processes", async () => {
    const marker = `nshslurm${Date.now()}`;
    const id = await restSubmit(lab, "long", `#!/bin/sh\nexec sleep 300 # ${marker}\n`);
    expect((await restWait(lab, id, ["RUNNING"])).pop()).toBe("RUNNING");
    // Only this job's sleep: an earlier test's cancelled `sleep 300` may still be on its way out under load.
    const sleeper = (): number[] =>
      findByMarker(lab.root).filter((p) => {
        try {
          return (
            fs.readFileSync(`/proc/${p}/cmdline`, "latin1").startsWith("sleep\x00300") &&
            fs.readFileSync(`/proc/${p}/environ`, "latin1").includes(`\x00SLURM_JOB_ID=${id}\x00`)
          );
        } catch {
          return false;
        }
      });
    expect(await waitUntil(() => sleeper().length > 0, 15_000)).toBe(true);
    const t0 = performance.now();
    const d = await lab.rest("DELETE", `/slurm/${V}/job/${id}`);
    const dAgain = await lab.rest("DELETE", `/slurm/${V}/job/999999`);
    expect(dAgain.status).toBe(500);
    expect(d.status, d.text).toBe(200);
    expect(d.json.errors).toEqual([]);
    const states = await restWait(lab, id, ["CANCELLED"], 30_000);
    expect(states[states.length - 1], `states seen after DELETE: ${states.join(">")}`).toBe("CANCELLED");
    expect((await restState(lab, id)).exit).toBe(15); // raw wait status: the step got SIGTERM (KILL after KillWait)
    const gone = await waitUntil(() => sleeper().length === 0, 30_000);
    expect(gone, `still running: ${sleeper().map((p) => procLine(p)).join("; ")}`).toBe(true);
    note(`DELETE -> CANCELLED and process gone ${Math.round(performance.now() - t0)} ms`);
  });

  test("bad, expired and missing tokens are refused", async () => {
    const ping = `/slurm/${V}/ping`;
    const bad = await lab.rest("GET", ping, { token: "e30.e30.AAAA" });
    const wrongKey = (await lab.token()).replace(/.{4}$/, "AAAA");
    const forged = await lab.rest("GET", `/slurm/${V}/jobs`, { token: wrongKey });
    const expired = await lab.rest("GET", ping, { token: await lab.token("root", -60) });
    const none = await lab.rest("GET", ping, { token: null });
    const userOnly = await lab.rest("GET", ping, { token: null, headers: { "X-SLURM-USER-NAME": "root" } });
    const submit = await lab.rest("POST", `/slurm/${V}/job/submit`, {
      token: wrongKey,
      body: submitBody(lab, "forged", "#!/bin/sh\ntrue\n"),
    });
    const desc = (r: { status: number; json: { errors?: Array<Record<string, unknown>> } | undefined; text: string }): string =>
      `${r.status} ${r.json?.errors?.map((e) => `${e.error}: ${e.description ?? ""} (${e.source ?? e.error_code ?? ""})`).join("; ") ?? r.text.trim()}`;
    for (const r of [bad, forged, expired, submit]) {
      expect(r.status).toBe(500);
      expect(r.json.errors.length).toBeGreaterThan(0);
    }
    expect(none.status).toBe(401);
    expect(userOnly.status).toBe(401);
    expect(submit.json.job_id ?? null).toBeNull();
    note(`garbage token: ${desc(bad)}`);
    note(`wrong signature (GET jobs): ${desc(forged)}`);
    note(`expired: ${desc(expired)}`);
    note(`no headers: ${desc(none)}; name only: ${desc(userOnly)}`);
    note(`forged submit: ${desc(submit)}`);
  });

  test("16 small jobs run concurrently", async () => {
    const t0 = performance.now();
    const ids = await Promise.all(
      Array.from({ length: 16 }, (_, i) => restSubmit(lab, `par${i}`, "#!/bin/sh\nsleep 3\n")),
    );
    const maxRunning = { n: 0 };
    const done = await waitUntil(
      async () => {
        const r = await lab.rest("GET", `/slurm/${V}/jobs`);
        const mine = (r.json.jobs as Array<{ job_id: number; job_state: string }>).filter((j) => ids.includes(j.job_id));
        maxRunning.n = Math.max(maxRunning.n, mine.filter((j) => j.job_state === "RUNNING").length);
        return mine.length === 16 && mine.every((j) => j.job_state === "COMPLETED");
      },
      60_000,
      100,
    );
    const ms = performance.now() - t0;
    expect(done).toBe(true);
    expect(maxRunning.n).toBe(16);
    note(`16 x sleep 3 submitted at once: max ${maxRunning.n} running together, all COMPLETED after ${Math.round(ms)} ms`);
  });

  test("a second lab side by side; its cleanup leaves nothing and the first lab keeps working", async () => {
    const t0 = Date.now();
    const b = await startSlurmLab({ name: "selfB", cpus: 4, waitForScheduler: false });
    labs.push(b);
    note(`second lab (waitForScheduler: false) start ${Date.now() - t0} ms`);
    expect(b.restPort).not.toBe(lab.restPort);
    expect(b.ctldPort).not.toBe(lab.ctldPort);
    expect(b.mungeSocket).not.toBe(lab.mungeSocket);

    // Both fresh clusters number from 1; each sees only its own jobs.
    const tb = performance.now();
    const rb = await b.run(["sbatch", "--parsable", "--wrap", "echo b"]);
    expect(rb.code, show(rb)).toBe(0);
    expect(await waitJobState(b, rb.stdout.trim(), ["COMPLETED"])).toBe("COMPLETED");
    note(`first job right after a start without waitForScheduler: sbatch -> COMPLETED ${Math.round(performance.now() - tb)} ms`);
    const qa = await lab.run(["squeue", "-h", "-t", "all", "-o", "%i %j"]);
    const qb = await b.run(["squeue", "-h", "-t", "all", "-o", "%i %j"]);
    expect(qb.stdout.trim()).toBe(`${rb.stdout.trim()} wrap`);
    expect(qa.stdout.split("\n").length).toBeGreaterThan(10);
    // b's token is not valid for a (different JWT keys)
    const cross = await lab.rest("GET", `/slurm/${V}/ping`, { token: await b.token() });
    expect(cross.status).toBe(500);

    // Leave running work behind: a CLI job, a REST job, and a job that drops the marker variables.
    const j1 = await b.run(["sbatch", "--parsable", "--wrap", "sleep 301"]);
    const j2 = await restSubmit(b, "restlong", "#!/bin/sh\nsleep 302\n");
    const j3 = await b.run(["sbatch", "--parsable", "--wrap", "exec env -u SLURM_CONF -u NSH_SLURM_LAB sleep 303"]);
    for (const id of [j1.stdout.trim(), String(j2), j3.stdout.trim()]) expect(await waitJobState(b, id, ["RUNNING"])).toBe("RUNNING");
    const sleepers = (): number[] =>
      [...allProcesses()].filter(([, cmd]) => /^sleep 30[123]$/.test(cmd)).map(([pid]) => pid);
    expect(await waitUntil(() => sleepers().length === 3, 5000)).toBe(true);
    const bPids = [...Object.values(b.pids), ...holdersOf(b.root), ...sleepers()];
    const t1 = Date.now();
    await b.cleanup();
    note(`cleanup of a lab with 3 running jobs ${Date.now() - t1} ms`);
    for (const pid of bPids) expect(isAlive(pid), `pid ${pid}`).toBe(false);
    expect(sleepers()).toEqual([]);
    expect(findByMarker(b.root)).toEqual([]);
    expect(holdersOf(b.root)).toEqual([]);
    expect(fs.existsSync(b.root)).toBe(false);

    for (const pid of Object.values(lab.pids)) expect(isAlive(pid)).toBe(true);
    const id = await restSubmit(lab, "after", "#!/bin/sh\ntrue\n");
    expect((await restWait(lab, id, ["COMPLETED"])).pop()).toBe("COMPLETED");
  });

  test("a lab that cannot start fails with the logs and leaves nothing", async () => {
    const tmpBefore = new Set(fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith("nsh-slurm-selfbad-")));
    let err = "";
    try {
      labs.push(await startSlurmLab({ name: "selfbad", extraConf: "SelectType=select/nonexistent", stepTimeoutMs: 10_000 }));
    } catch (e) {
      err = String(e);
    }
    expect(err).toMatch(/slurmctld (exited|did not listen)/);
    expect(err).toContain("--- slurmctld.log");
    expect(err).toMatch(/select\/nonexistent/);
    const left = fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith("nsh-slurm-selfbad-") && !tmpBefore.has(n));
    expect(left).toEqual([]);
    note(`start failure message: ${err.split("\n")[0]}`);
  });

  test("the watchdog stops a crashed test process's lab, jobs included", async () => {
    const script = path.join(os.tmpdir(), `nsh-slurm-crash-${process.pid}.ts`);
    fs.writeFileSync(
      script,
      `import { startSlurmLab } from ${JSON.stringify(path.join(import.meta.dir, "../lab/slurm.ts"))};
const lab = await startSlurmLab({ name: "crash" });
const r = await lab.run(["sbatch", "--parsable", "--wrap", "sleep 305"]);
console.log(JSON.stringify({ root: lab.root, pids: Object.values(lab.pids), job: r.stdout.trim() }));
await Bun.sleep(600_000);
`,
    );
    const child = Bun.spawn([process.execPath, script], { stdout: "pipe", stderr: "inherit", env: { ...process.env, NSH_LAB_WATCHDOG: "1" } });
    try {
      const reader = child.stdout.getReader();
      let out = "";
      while (!out.includes("\n")) {
        const { done, value } = await reader.read();
        if (done) break;
        out += new TextDecoder().decode(value);
      }
      const info = JSON.parse(out) as { root: string; pids: number[]; job: string };
      const sleeper = (): number[] => [...allProcesses()].filter(([, cmd]) => cmd === "sleep 305").map(([pid]) => pid);
      expect(await waitUntil(() => sleeper().length === 1, 15_000)).toBe(true);
      const victims = [...info.pids, ...sleeper(), ...holdersOf(info.root)];
      child.kill("SIGKILL");
      await child.exited;
      const t0 = Date.now();
      const gone = await waitUntil(() => victims.every((p) => !isAlive(p)) && !fs.existsSync(info.root), 20_000, 100);
      note(`after SIGKILL of the test process the watchdog removed its lab in ${Date.now() - t0} ms`);
      expect(gone).toBe(true);
      expect(findByMarker(info.root)).toEqual([]);
    } finally {
      child.kill("SIGKILL");
      fs.rmSync(script, { force: true });
    }
  });

  test("cleanup leaves no slurm process and no directory", async () => {
    const running = await lab.run(["sbatch", "--parsable", "--wrap", "sleep 304"]);
    expect(await waitJobState(lab, running.stdout.trim(), ["RUNNING"])).toBe("RUNNING");
    const pids = Object.values(lab.pids);
    const t0 = Date.now();
    await lab.cleanup();
    note(`cleanup ${Date.now() - t0} ms`);
    for (const pid of pids) expect(isAlive(pid)).toBe(false);
    expect(findByMarker(lab.root)).toEqual([]);
    expect(fs.existsSync(lab.root)).toBe(false);
    const left = [...slurmProcesses()].filter(([pid]) => !before.has(pid));
    expect(left).toEqual([]);
    expect([...allProcesses()].filter(([, cmd]) => cmd === "sleep 304")).toEqual([]);
  });
});

function allProcesses(): Map<number, string> {
  const out = new Map<number, string>();
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (!isAlive(Number(name))) continue;
      out.set(Number(name), fs.readFileSync(`/proc/${name}/cmdline`, "latin1").replace(/\0/g, " ").trim());
    } catch {
      // gone
    }
  }
  return out;
}
