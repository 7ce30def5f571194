// OpenPBS through libpbs, its IFL (job-scheduler = pbs). The runner: it finds the server and libpbs
// (pbs-host/pbs-port, else pbs.conf), and makes each IFL conversation in a child process
// (`nsh __pbs-client`, pbs-client.ts) running as pbs-user: libpbs authenticates the calling uid and
// PBS runs a job as the user who submitted it, and its calls block, so they stay out of this
// process. Pure parts live in pbs-shapes.ts, the symbol table in pbs-ffi.ts.
import * as fs from "node:fs";
import * as path from "node:path";
import type { NshConfig } from "../config/nsh-conf.ts";
import { stateDir } from "../state/dir.ts";
import { compiled } from "../util/self.ts";
import type { ClientAnswer, ClientRequest } from "./pbs-client.ts";
import {
  goneJob, jobStatus, jobTag, type PbsJobRecord, parsePbsConf, parseResources, sameJob, STATUS_ATTRS, submitAttributes,
} from "./pbs-shapes.ts";
import {
  type DoctorCheck, isTerminal, type JobHandle, type JobSpec, type JobStatus, type Scheduler, SchedulerError,
  type SchedulerErrorKind, type RequestGate,
} from "./scheduler.ts";

type Env = Record<string, string | undefined>;
const SYS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const DEFAULT_PORT = 15001;

export interface PbsOptions {
  /** pbs-host; empty: PBS_SERVER from the environment, else from pbs.conf */
  host?: string;
  /** pbs-port; used as given when pbs-host is set, else pbs.conf's PBS_BATCH_SERVICE_PORT wins */
  port?: number;
  /** pbs-user: the user (name or uid) the IFL calls, and so the jobs, run as; empty: nsh's own */
  user?: string;
  /** pbs-lib; empty: PBS_EXEC/lib/libpbs.so.0 */
  lib?: string;
  /** private directory (0700) for script files while nsh's own user submits */
  scriptDir: string;
  /** how to start the client; default: this nsh's `__pbs-client` */
  clientCommand?: string[];
  env?: Env;
  /** where NSH_FFI_TRACE lines from the client go (default: stderr) */
  trace?: (line: string) => void;
  requestTimeoutMs?: number;
}

interface Resolved {
  confFile: string;
  host: string;
  port: number;
  lib: string;
  ids: { uid: number; gid: number; home: string } | undefined;
}

const AUTH_ERRNOS = new Set([15007, 15008, 15019, 15020, 15023]); // PERM, BADHOST, BADCRED, EXPIRED, BADUSER
const UNREACHABLE_ERRNOS = new Set([15031, 15033, 15034]); // PROTOCOL, NOCONNECTS, NOSERVER

export class PbsScheduler implements Scheduler {
  readonly kind = "pbs" as const;
  readonly requestTimeoutMs: number;
  private readonly o: PbsOptions;
  private readonly env: Env;
  private resolved: Promise<Resolved> | null = null;

  constructor(o: PbsOptions) {
    this.o = o;
    this.env = o.env ?? process.env;
    this.requestTimeoutMs = o.requestTimeoutMs ?? 60_000;
  }

  /** nsh.conf's pbs-* settings; script files live in the state directory. */
  static fromConfig(conf: NshConfig, env: Env = process.env, opts: Partial<PbsOptions> = {}): PbsScheduler {
    return new PbsScheduler({
      host: conf["pbs-host"],
      port: conf["pbs-port"],
      user: conf["pbs-user"],
      lib: conf["pbs-lib"],
      scriptDir: path.join(conf["state-dir"] || stateDir(env), "pbs"),
      env,
      ...opts,
    });
  }

  describe(): string {
    const where = this.o.host ? `${this.o.host}:${this.o.port ?? DEFAULT_PORT}` : "the server in pbs.conf";
    const lib = this.o.lib || "PBS_EXEC/lib/libpbs.so.0";
    return `pbs via libpbs (${lib}), server ${where}, jobs run as ${this.o.user || "the calling user"}`;
  }

  private resolve(): Promise<Resolved> {
    this.resolved ??= resolveSetup(this.o, this.env).catch((e: unknown) => {
      this.resolved = null;
      throw e;
    });
    return this.resolved;
  }

  /** Connects once (as pbs-user): a clear error when pbs.conf, libpbs or the server is wrong. */
  async prepare(gate?: RequestGate): Promise<void> {
    await gate?.();
    await this.call({ op: "ping" });
  }

  private async call(request: ClientRequest): Promise<ClientAnswer & { ok: true }> {
    const r = await this.resolve();
    const server = `${r.host}:${r.port}`;
    const scriptDir = r.ids ? "/tmp" : this.o.scriptDir; // a switched user cannot enter nsh's state dir
    if (request.op === "submit") {
      request.scriptDir = scriptDir;
      if (!r.ids) fs.mkdirSync(scriptDir, { recursive: true, mode: 0o700 });
    }
    const answer = await this.spawnClient(r, { lib: r.lib, server, request });
    if (answer.ok) return answer;
    const where = `${server} (pbs-host/pbs-port, else PBS_SERVER in ${r.confFile})`;
    if (answer.stage === "load") {
      const fix = `set pbs-lib or PBS_EXEC in ${r.confFile}`;
      throw new SchedulerError("config", `pbs: cannot load libpbs ${r.lib}: ${answer.message}; ${fix}`);
    }
    const kind = errnoKind(answer.errno, answer.message, answer.stage);
    if (answer.stage === "connect") {
      const what = kind === "auth" ? "the PBS server refused the connection from" : "cannot reach the PBS server at";
      const msg = `pbs: ${what} ${where}: ${answer.message}`;
      throw new SchedulerError(kind === "auth" ? "auth" : "unreachable", msg, [answer.message]);
    }
    let msg = `pbs: ${request.op} at ${server}: ${answer.message} (PBS error ${answer.errno})`;
    if (kind === "auth") msg += `; ${this.refusedUser(r)}`;
    throw new SchedulerError(kind, msg, [answer.message]);
  }

  /** Whom PBS refused, and what would let it in. */
  private refusedUser(r: Resolved): string {
    if (!r.ids && process.getuid?.() === 0) {
      return "nsh runs as root and PBS refuses root's jobs: set pbs-user to the user jobs should run as";
    }
    const who = this.o.user ? `pbs-user ${this.o.user}` : `nsh's own user (uid ${process.getuid?.()})`;
    return `PBS refused ${who}: the PBS admin must let it submit (the server's and queue's acl_users, flatuid)`;
  }

  private async spawnClient(r: Resolved, call: object): Promise<ClientAnswer> {
    const self = compiled ? ["__pbs-client"] : [path.join(import.meta.dir, "pbs-client.ts")];
    const cmd = this.o.clientCommand ?? [process.execPath, ...self];
    const childEnv: Record<string, string> = { PATH: SYS_PATH, LC_ALL: "C", PBS_CONF_FILE: r.confFile, TMPDIR: "/tmp" };
    if (r.ids) childEnv.HOME = r.ids.home;
    else if (this.env.HOME) childEnv.HOME = this.env.HOME;
    if (this.env.NSH_FFI_TRACE) childEnv.NSH_FFI_TRACE = this.env.NSH_FFI_TRACE;
    const proc = Bun.spawn(cmd, {
      stdin: "pipe", stdout: "pipe", stderr: "pipe", cwd: "/", env: childEnv,
      ...(r.ids ? { uid: r.ids.uid, gid: r.ids.gid } : {}),
    });
    proc.stdin.write(JSON.stringify(call));
    await proc.stdin.end();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      proc.kill("SIGKILL");
    }, this.requestTimeoutMs);
    const [out, err, code] = await Promise.all([
      new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited,
    ]);
    clearTimeout(timer);
    const other: string[] = [];
    const trace = this.o.trace ?? ((l: string) => void process.stderr.write(`${l}\n`));
    for (const line of err.split("\n").filter(Boolean)) (line.startsWith("nsh ffi: ") ? trace(line) : other.push(line));
    if (timedOut) {
      const why = `the PBS server at ${r.host}:${r.port} did not answer within ${this.requestTimeoutMs} ms`;
      throw new SchedulerError("timeout", `pbs: ${why}`);
    }
    try {
      const answer = JSON.parse(out) as ClientAnswer;
      // libpbs prints some reasons (a pbs.conf it cannot use) instead of setting pbs_errno
      if (!answer.ok && other.length > 0) answer.message += ` (${other.join("; ").slice(0, 500)})`;
      return answer;
    } catch {
      const why = other.join("\n").slice(-2000) || `exit ${code}`;
      throw new SchedulerError("protocol", `pbs: the libpbs client (${cmd.join(" ")}) failed: ${why}`);
    }
  }

  async submit(job: JobSpec): Promise<JobHandle> {
    // Checked before anything runs: a refused derivation needs no server to be told so.
    const res = parseResources(job.extra);
    if (!res.ok) throw new SchedulerError("rejected", res.error);
    let attrs;
    try {
      attrs = submitAttributes(job, res.value);
    } catch (e) {
      throw new SchedulerError("rejected", `pbs: ${e instanceof Error ? e.message : String(e)}; nothing was submitted`);
    }
    const a = await this.call({ op: "submit", attrs, script: job.script, scriptDir: "" });
    if (!a.id) throw new SchedulerError("protocol", "pbs: pbs_submit returned no job id");
    return { id: a.id };
  }

  async status(id: string): Promise<JobStatus> {
    return (await this.statusMany([id])).get(id)!;
  }

  /** One pbs_statjob (history included) for all of them; a job PBS no longer knows is "unknown". */
  async statusMany(ids: string[]): Promise<Map<string, JobStatus>> {
    const out = new Map<string, JobStatus>();
    if (ids.length === 0) return out;
    const a = await this.call({ op: "status", ids, names: STATUS_ATTRS, history: true });
    const jobs = a.jobs ?? [];
    for (const id of ids) {
      const rec = jobs.find((j) => j.id === id) ?? jobs.find((j) => sameJob(j.id, id));
      out.set(id, rec ? { ...jobStatus(rec), id } : goneJob(id));
    }
    return out;
  }

  async cancel(id: string): Promise<void> {
    await this.cancelMany([id]);
  }

  /** One pbs_deljoblist; jobs already finished or forgotten are not an error. */
  async cancelMany(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    const a = await this.call({ op: "cancel", ids });
    const failed = (a.failed ?? []).filter((f) => f.code !== 15001 && f.code !== 15139);
    if (failed.length > 0) {
      const lines = failed.map((f) => `${f.id}: ${f.text} (PBS error ${f.code})`);
      throw new SchedulerError("rejected", `pbs: cancelling failed for job ${lines.join("; ")}`, lines);
    }
  }

  async findTagged(tag: string): Promise<string[]> {
    const a = await this.call({ op: "status", ids: [], names: ["job_state", "Variable_List"], history: false });
    return (a.jobs ?? []).filter((j: PbsJobRecord) => jobTag(j) === tag && !isTerminal(jobStatus(j).state)).map((j) => j.id);
  }

  /** pbs.conf, libpbs, pbs-user, the server, and whether it keeps job history. */
  async doctor(): Promise<DoctorCheck[]> {
    const checks: DoctorCheck[] = [];
    let r: Resolved;
    try {
      r = await this.resolve();
    } catch (e) {
      return [{ ok: false, what: "pbs setup", detail: e instanceof Error ? e.message : String(e) }];
    }
    checks.push({ ok: true, what: "pbs.conf", detail: `${r.confFile}: server ${r.host}:${r.port}` });
    checks.push({ ok: fs.existsSync(r.lib), what: "libpbs", detail: r.lib });
    const as = r.ids ? `${this.o.user} (uid ${r.ids.uid})` : `nsh's own user (uid ${process.getuid?.()})`;
    const fine = !!r.ids || process.getuid?.() !== 0;
    const detail = fine ? as : `${as}: PBS refuses root's jobs by default, set pbs-user`;
    checks.push({ ok: fine, what: "jobs run as", detail });
    try {
      const a = await this.call({ op: "server", names: ["job_history_enable"] });
      checks.push({ ok: true, what: "PBS server", detail: `answers at ${r.host}:${r.port}` });
      const on = a.jobs?.[0]?.attrs.find((x) => x.name === "job_history_enable")?.value === "True";
      const detail = on
        ? "enabled: finished jobs keep their exit status"
        : "off: a finished job's exit status is lost and nsh sees it as unknown " +
          "(qmgr -c 'set server job_history_enable = True')";
      checks.push({ ok: on, what: "PBS job history", detail });
    } catch (e) {
      checks.push({ ok: false, what: "PBS server", detail: e instanceof Error ? e.message : String(e) });
    }
    return checks;
  }
}

/** PBS errno (and message) → what a caller can do about it. */
export function errnoKind(errno: number, message: string, stage: string): SchedulerErrorKind {
  if (AUTH_ERRNOS.has(errno) || /bad uid|not authorized|permission|credential/i.test(message)) return "auth";
  if (stage === "connect" || UNREACHABLE_ERRNOS.has(errno)) return "unreachable";
  return "rejected";
}

async function resolveSetup(o: PbsOptions, env: Env): Promise<Resolved> {
  const confFile = env.PBS_CONF_FILE || "/etc/pbs.conf";
  let conf: Record<string, string> = {};
  try {
    conf = parsePbsConf(fs.readFileSync(confFile, "utf8"));
  } catch (e) {
    if (!o.host || !o.lib) {
      const why = (e as NodeJS.ErrnoException).code ?? String(e);
      const fix = "set pbs-host and pbs-lib, or PBS_CONF_FILE";
      throw new SchedulerError("config", `pbs: cannot read ${confFile} (${why}): ${fix}`);
    }
  }
  const host = o.host || env.PBS_SERVER || conf.PBS_SERVER || "";
  if (!host) throw new SchedulerError("config", `pbs: no PBS server: ${confFile} has no PBS_SERVER and pbs-host is unset`);
  const confPort = Number(conf.PBS_BATCH_SERVICE_PORT);
  const fromConf = Number.isInteger(confPort) && confPort > 0 ? confPort : undefined;
  const port = (o.host ? undefined : fromConf) ?? o.port ?? DEFAULT_PORT;
  const exec = env.PBS_EXEC || conf.PBS_EXEC || "";
  const lib = o.lib || (exec ? path.join(exec, "lib", "libpbs.so.0") : "");
  if (!lib) throw new SchedulerError("config", `pbs: where is libpbs? set pbs-lib, or PBS_EXEC in ${confFile}`);
  if (!fs.existsSync(lib)) throw new SchedulerError("config", `pbs: libpbs ${lib} does not exist; set pbs-lib`);
  return { confFile, host, port, lib, ids: o.user ? await resolveUser(o.user) : undefined };
}

/** pbs-user → uid, gid and home through NSS (`getent passwd`, LDAP users too); only root may switch. */
async function resolveUser(user: string): Promise<{ uid: number; gid: number; home: string } | undefined> {
  const proc = Bun.spawn(["getent", "passwd", user], { stdout: "pipe", stderr: "ignore", env: { PATH: SYS_PATH } });
  const [text, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
  const f = text.trim().split("\n")[0]?.split(":") ?? [];
  if (code !== 0 || f.length < 6 || !/^\d+$/.test(f[2]!) || !/^\d+$/.test(f[3]!)) {
    throw new SchedulerError("config", `pbs-user '${user}': no such user (getent passwd found nothing)`);
  }
  const ids = { uid: Number(f[2]), gid: Number(f[3]), home: f[5]! };
  const me = process.getuid?.();
  if (ids.uid === me) return undefined; // already that user: no switch needed
  if (me !== 0) {
    const why = `nsh runs as uid ${me}: only root can run the PBS calls as another user`;
    throw new SchedulerError("config", `pbs-user = ${user}, but ${why}`);
  }
  if (ids.uid === 0) {
    throw new SchedulerError("config", "pbs-user is root: PBS refuses root's jobs; name an unprivileged user");
  }
  return ids;
}

/** The factory the scheduler registry calls for job-scheduler = pbs. */
export const fromConfig = (conf: NshConfig, env: Env = process.env, opts: Partial<PbsOptions> = {}): PbsScheduler =>
  PbsScheduler.fromConfig(conf, env, opts);
