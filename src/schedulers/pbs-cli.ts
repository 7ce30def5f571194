// OpenPBS through its command-line tools (qsub, qstat, qdel), for sites where libpbs is not an
// option: the runner. Each tool runs from argv (never a shell); the job script goes to qsub's stdin
// and the job's environment is qsub's own (-V), so neither is in any argv. argv builders and
// parsers: pbs-cli-shapes.ts.
//
// Who the job runs as: PBS runs a job as the user who ran qsub, and refuses root's jobs by default
// ("Bad UID for job execution"). The hook usually runs as root under nix-daemon, so pbs-cli-user
// names the user the tools run as: every child gets that uid and gid (Bun.spawn's uid/gid; nsh must
// be root to use it). The admin only has to let that user submit (and, with flatuid off, have it
// known on the server host); no acl_roots entry for root is needed.
import * as fs from "node:fs";
import * as path from "node:path";
import type { NshConfig } from "../config/nsh-conf.ts";
import type { DoctorCheck, JobHandle, JobSpec, JobStatus, Scheduler } from "./scheduler.ts";
import { CliBackend } from "./cli-backend.ts";
import { SchedulerError } from "./scheduler.ts";
import {
  type CliToolOptions, type Prepared, type RunExtras, SYS_PATH, type ToolOutput, callTool, findTools, pathDirs,
  resolveUser, runsAs,
} from "./cli-tool.ts";
import {
  buildQsub, classifyFailure, errorLines, isPbsJobId, isSlurmWrapper, matchId, parsePbsConf, parseQstatDsv,
  parseQstatJson, parseQsubOutput, parseServerStatus, qdelHarmless, qstatManyArgs, qstatServerArgs, qstatTaggedArgs,
  statusOf, taggedIn, unknownIds, unknownJob,
} from "./pbs-cli-shapes.ts";

export const PBS_TOOLS = ["qsub", "qstat", "qdel"] as const;
type Tool = (typeof PBS_TOOLS)[number];

/** user: pbs-cli-user; env: also PBS_CONF_FILE, passed on to the tools. */
export interface PbsCliOptions extends CliToolOptions {
  /** pbs-bin-dir: where the tools are; empty: PBS_EXEC/bin from pbs.conf, else PATH */
  binDir?: string;
  /** pbs-host: the server; empty: the tools' own (pbs.conf's PBS_SERVER) */
  server?: string;
  /** pbs-port when not PBS's 15001 (only with pbs-host; without it pbs.conf says both) */
  port?: number;
}

/** version: OpenPBS's, as the server says it */
type PbsPrepared = Prepared<Tool, string>;

export class PbsCliScheduler extends CliBackend<Tool, string, PbsCliOptions> implements Scheduler {
  readonly kind = "pbs-cli" as const;
  protected readonly jobIds = { valid: isPbsJobId, of: "PBS" };

  /** Settings of nsh.conf: pbs-bin-dir, pbs-cli-user, pbs-host and pbs-port. */
  static fromConfig(
    conf: NshConfig,
    env: Record<string, string | undefined> = process.env,
    more: Partial<PbsCliOptions> = {},
  ): PbsCliScheduler {
    const host = conf["pbs-host"].trim();
    const port = conf["pbs-port"];
    return new PbsCliScheduler({
      binDir: conf["pbs-bin-dir"].trim() || undefined,
      user: conf["pbs-cli-user"].trim() || undefined,
      server: host || undefined,
      port: host && port !== 15001 ? port : undefined,
      env,
      ...more,
    });
  }

  describe(): string {
    const where = this.binDir() ? `tools in ${this.binDir()}` : "tools on PATH";
    const port = this.opts.port ? `:${this.opts.port}` : "";
    const server = this.opts.server ? `, server ${this.opts.server}${port}` : "";
    return `PBS command-line tools (${where}${server}), jobs run as ${this.opts.user || "nsh's own user"}`;
  }

  /** pbs-bin-dir, else PBS_EXEC/bin of pbs.conf (PBS_CONF_FILE or /etc/pbs.conf), else none (PATH). */
  private binDir(): string | undefined {
    if (this.opts.binDir) return this.opts.binDir;
    const file = this.env().PBS_CONF_FILE || "/etc/pbs.conf";
    try {
      const exec = parsePbsConf(fs.readFileSync(file, "utf8")).PBS_EXEC;
      return exec ? path.join(exec, "bin") : undefined;
    } catch {
      return undefined;
    }
  }

  private env(): Record<string, string | undefined> {
    return this.opts.env ?? process.env;
  }

  protected override prepareAsksServer(): boolean {
    return true;
  }

  /** The tools, the user, and the server's answer to `qstat -B`. */
  protected async doPrepare(): Promise<PbsPrepared> {
    const { found, where } = this.findTools();
    const missing = PBS_TOOLS.filter((t) => !found[t]);
    if (missing.length > 0) {
      const what = `pbs-cli: ${missing.join(", ")} not found ${where}`;
      throw new SchedulerError("config", `${what}; install OpenPBS's client tools or set pbs-bin-dir`);
    }
    const paths = found as Record<Tool, string>;
    const wrapper = this.slurmWrapper(paths.qsub);
    if (wrapper) this.log(`pbs-cli: warning: ${wrapper}`);
    const ids = this.opts.user ? await resolveUser("pbs-cli-user", this.opts.user) : undefined;
    const p: PbsPrepared = { paths, ids, version: "" };
    const r = await this.run(p, "qstat", qstatServerArgs(this.opts.server));
    const server = r.code === 0 ? parseServerStatus(parseJson(r.stdout, "qstat -B")) : null;
    if (!server) {
      const why = errorLines(r.stderr).join("; ") || r.stdout.trim().slice(0, 200);
      // Named as nsh asked for it: qstat's own message names pbs.conf's default server even when
      // it was given another (OpenPBS 23.06).
      const asked = `'${paths.qstat} -B' (exit ${r.code})`;
      const what = `pbs-cli: the PBS server ${this.serverNamed()} does not answer ${asked}: ${why}`;
      const kind = classifyFailure(r.stderr);
      throw new SchedulerError(kind === "rejected" ? "unreachable" : kind, wrapper ? `${what}; ${wrapper}` : what);
    }
    p.version = server.version;
    return p;
  }

  /** The server as nsh.conf or pbs.conf names it, for messages. */
  private serverNamed(): string {
    if (this.opts.server) return `${this.opts.server}:${this.opts.port ?? 15001} (pbs-host, pbs-port)`;
    return `of ${this.env().PBS_CONF_FILE || "/etc/pbs.conf"} (its PBS_SERVER; or set pbs-host)`;
  }

  private slurmWrapper(qsub: string): string | null {
    try {
      const fd = fs.openSync(qsub, "r");
      const buf = Buffer.alloc(4096);
      const n = fs.readSync(fd, buf, 0, buf.length, 0);
      fs.closeSync(fd);
      return isSlurmWrapper(buf.subarray(0, n).toString("latin1"))
        ? `${qsub} is Slurm's torque wrapper, not PBS's qsub: set pbs-bin-dir to PBS's bin directory`
        : null;
    } catch {
      return null;
    }
  }

  private findTools(): { found: Partial<Record<Tool, string>>; where: string } {
    const dir = this.binDir();
    const dirs = dir ? [dir] : pathDirs(this.env().PATH ?? SYS_PATH);
    const found = findTools(PBS_TOOLS, dirs);
    const src = this.opts.binDir ? "pbs-bin-dir" : "PBS_EXEC/bin of pbs.conf";
    return { found, where: dir ? `in ${src} ${dir}` : `on PATH (${dirs.join(":")})` };
  }

  /** What every tool needs to find its configuration: pbs.conf (PBS_CONF_FILE). */
  private toolEnv(): Record<string, string> {
    const conf = this.env().PBS_CONF_FILE;
    return conf ? { PBS_CONF_FILE: conf } : {};
  }

  async submit(job: JobSpec): Promise<JobHandle> {
    const server = this.opts.server && (this.opts.port ? `${this.opts.server}:${this.opts.port}` : this.opts.server);
    const call = buildQsub(job, { server, toolEnv: this.toolEnv() });
    const p = await this.prepared();
    const r = await this.run(p, "qsub", call.args, { stdin: call.script, env: call.env });
    const id = r.code === 0 ? parseQsubOutput(r.stdout) : null;
    if (id === null) {
      const why = errorLines(r.stderr).join("; ") || `no job id in its output '${r.stdout.trim().slice(0, 200)}'`;
      const kind = r.code === 0 ? "protocol" : classifyFailure(r.stderr);
      const user = kind === "auth" ? `; ${this.refusedUser()}` : "";
      throw new SchedulerError(kind, `qsub refused the job (exit ${r.code}): ${why}${user}`, errorLines(r.stderr));
    }
    return { id };
  }

  /** One `qstat -x -f` for all ids (history included); ids the server does not know → "unknown". */
  protected async statusOf(wanted: string[], p: PbsPrepared): Promise<Map<string, JobStatus>> {
    const out = new Map<string, JobStatus>();
    const r = await this.run(p, "qstat", qstatManyArgs(wanted));
    const unknown = unknownIds(r.stderr);
    const other = errorLines(r.stderr).filter((l) => !/Unknown Job Id/i.test(l));
    if (r.code !== 0 && other.length > 0) throw this.failed("qstat", r);
    const jobs = parseQstatDsv(r.stdout);
    for (const id of wanted) {
      const key = matchId(id, jobs.keys());
      if (key !== undefined) out.set(id, statusOf(id, jobs.get(key)!));
      else {
        const why = unknown.some((u) => matchId(id, [u])) ? "the PBS server does not know it" : "qstat did not list it";
        const more = "(finished before job history kept it, or never existed)";
        out.set(id, unknownJob(id, `job ${id}: ${why} ${more}`));
      }
    }
    return out;
  }

  /** One qdel for all ids; jobs already finished or forgotten are not an error. */
  protected async cancelAll(wanted: string[], p: PbsPrepared): Promise<void> {
    const r = await this.run(p, "qdel", wanted);
    const real = errorLines(r.stderr).filter((l) => !qdelHarmless(l));
    if (r.code !== 0 && real.length > 0) throw this.failed("qdel", r);
  }

  /** One `qstat -f -F json` of the unfinished jobs; the tag is in each job's Variable_List. */
  async findTagged(tag: string): Promise<string[]> {
    const p = await this.prepared();
    const r = await this.run(p, "qstat", qstatTaggedArgs(this.opts.server));
    if (r.code !== 0) throw this.failed("qstat", r);
    return taggedIn(parseQstatJson(parseJson(r.stdout, "qstat -f")), tag);
  }

  async doctor(): Promise<DoctorCheck[]> {
    const checks: DoctorCheck[] = [];
    const { found, where } = this.findTools();
    for (const t of PBS_TOOLS) checks.push({ ok: !!found[t], what: t, detail: found[t] ?? `not found ${where}` });
    if (found.qsub) {
      const wrapper = this.slurmWrapper(found.qsub);
      checks.push({ ok: !wrapper, what: "qsub is PBS's", detail: wrapper ?? found.qsub });
    }
    const p = await this.preparedOrCheck(checks, "PBS server answers qstat -B");
    if (!p) return checks;
    checks.push({ ok: true, what: "PBS server answers qstat -B", detail: `OpenPBS ${p.version}` });
    const user = runsAs(this.opts.user, p.ids);
    const root = !p.ids && process.getuid?.() === 0;
    const why = "root (PBS refuses root's jobs unless acl_roots allows it; set pbs-cli-user)";
    const detail = root ? `${user}: ${why}` : user;
    checks.push({ ok: !root, what: "jobs run as", detail });
    return checks;
  }

  private failed(tool: Tool, r: ToolOutput): SchedulerError {
    const lines = errorLines(r.stderr);
    const kind = classifyFailure(r.stderr);
    const what = `${tool} failed (exit ${r.code}): ${lines.join("; ") || "no error text"}`;
    return new SchedulerError(kind, kind === "auth" ? `${what}; ${this.refusedUser()}` : what, lines);
  }

  /** Whom PBS refused, and what would let it in. */
  private refusedUser(): string {
    if (!this.opts.user && process.getuid?.() === 0) {
      return "nsh runs as root and PBS refuses root's jobs: set pbs-cli-user to the user jobs should run as";
    }
    const who = this.opts.user ? `pbs-cli-user ${this.opts.user}` : `nsh's own user (uid ${process.getuid?.()})`;
    return `PBS refused ${who}: the PBS admin must let it submit (the server's and queue's acl_users, flatuid)`;
  }

  /** One tool call from argv, with a bounded time. Default environment: nothing of nsh's own. */
  private run(p: PbsPrepared, tool: Tool, args: string[], o: RunExtras = {}): Promise<ToolOutput> {
    // TZ=UTC: qstat prints times in the local zone without saying which. Job ids name their server;
    // PBS_SERVER and PBS_BATCH_SERVICE_PORT (pbs-host, pbs-port) serve qstat -B and the listing.
    const env = o.env ?? {
      PATH: SYS_PATH,
      LC_ALL: "C",
      TZ: "UTC",
      ...this.toolEnv(),
      ...(this.opts.server ? { PBS_SERVER: this.opts.server } : {}),
      ...(this.opts.port ? { PBS_BATCH_SERVICE_PORT: String(this.opts.port) } : {}),
    };
    const logged = `${tool}${tool === "qsub" ? "" : ` (${args.length} args)`}`;
    const { user, timeoutMs } = this.opts;
    const call = { backend: "pbs-cli", prepared: p, tool, args, env, stdin: o.stdin, user, timeoutMs, logged };
    return callTool({ ...call, server: "the PBS server", log: this.log });
  }
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    const what2 = `${what} -F json printed something that is not JSON: ${text.trim().slice(0, 200)}`;
    throw new SchedulerError("protocol", what2);
  }
}
