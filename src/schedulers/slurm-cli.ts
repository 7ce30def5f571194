// Slurm through its command-line tools, for clusters without slurmrestd: the runner. Each tool runs
// from argv (never a shell); the job script goes to sbatch's stdin and the job's environment is
// sbatch's own (--export=ALL), so neither is in any argv. argv builders and parsers: slurm-cli-shapes.ts.
//
// Who the job runs as: Slurm runs a job as the user who ran sbatch. The hook usually runs as root
// under nix-daemon, and sites refuse root's jobs, so slurm-cli-user names the user the tools run as:
// every child gets that uid and gid (Bun.spawn's uid/gid; nsh must be root to use it). slurmctld
// looks up the user's groups itself, so partitions' AllowGroups and accounts work as for that user.
import * as fs from "node:fs";
import type { NshConfig } from "../config/nsh-conf.ts";
import type { DoctorCheck, JobHandle, JobSpec, JobStatus, JsonObject, Scheduler } from "./scheduler.ts";
import { SchedulerError } from "./scheduler.ts";
import { CliBackend } from "./cli-backend.ts";
import {
  type CliToolOptions, type Prepared, type RunExtras, SYS_PATH, type ToolOutput, callTool, findTools, pathDirs,
  resolveUser, runsAs,
} from "./cli-tool.ts";
import {
  accountingDisabled,
  classifyFailure,
  errorLines,
  forgottenJob,
  noSuchJobs,
  parseSacct,
  parseSlurmVersion,
  parseSqueueFormat,
  parseSqueueJson,
  sacctArgs,
  squeueArgs,
  squeueTaggedArgs,
  squeueUsesJson,
  taggedIn,
} from "./slurm-cli-shapes.ts";
import { buildSbatch, parseSbatchOutput } from "./slurm-cli-sbatch.ts";
import { slurmAuthRefusal } from "./slurm-auth.ts";

export const SLURM_TOOLS = ["sbatch", "squeue", "sacct", "scancel"] as const;
type Tool = (typeof SLURM_TOOLS)[number];

/** user: slurm-cli-user; timeoutMs: Slurm's clients retry a busy slurmctld for a while. */
export interface SlurmCliOptions extends CliToolOptions {
  /** slurm-bin-dir: where the tools are; empty: looked up on PATH */
  binDir?: string;
  /** slurm-conf: SLURM_CONF for every tool; empty: Slurm's own default (or configless) */
  slurmConf?: string;
  /** slurm-extra-submission-params: merged over each job's own extra params, so it wins */
  extraParams?: JsonObject;
  /** how squeue answers: "auto" (--json from 23.02 on), or forced */
  squeueOutput?: "auto" | "json" | "format";
}

/** version: Slurm's, as `sbatch --version` says it */
type SlurmVersion = { release: string; major: number; minor: number } | null;
type SlurmPrepared = Prepared<Tool, SlurmVersion>;

export class SlurmCliScheduler extends CliBackend<Tool, SlurmVersion, SlurmCliOptions> implements Scheduler {
  readonly kind = "slurm-cli" as const;
  /** Job ids are numbers (or ARRAY_TASK). */
  protected readonly jobIds = { valid: (id: string) => /^\d+(_\d+)?$/.test(id), of: "Slurm" };

  /** Settings of nsh.conf: slurm-bin-dir, slurm-conf, slurm-cli-user, slurm-extra-submission-params. */
  static fromConfig(
    conf: NshConfig,
    env: Record<string, string | undefined> = process.env,
    more: Partial<SlurmCliOptions> = {},
  ): SlurmCliScheduler {
    return new SlurmCliScheduler({
      binDir: conf["slurm-bin-dir"].trim() || undefined,
      slurmConf: conf["slurm-conf"].trim() || undefined,
      user: conf["slurm-cli-user"].trim() || undefined,
      extraParams: conf["slurm-extra-submission-params"] as JsonObject,
      env,
      ...more,
    });
  }

  describe(): string {
    const where = this.opts.binDir ? `tools in ${this.opts.binDir}` : "tools on PATH";
    const conf = this.opts.slurmConf ? `, SLURM_CONF ${this.opts.slurmConf}` : "";
    return `slurm command-line tools (${where}${conf}), jobs run as ${this.opts.user || "nsh's own user"}`;
  }

  /** The tools, the user, and the Slurm version (`sbatch --version`). */
  protected async doPrepare(): Promise<SlurmPrepared> {
    const paths = this.findTools();
    const missing = SLURM_TOOLS.filter((t) => !paths[t]);
    if (missing.length > 0) {
      const where = this.opts.binDir ? `in slurm-bin-dir ${this.opts.binDir}` : `on PATH (${this.searchPath()})`;
      const what = `slurm-cli: ${missing.join(", ")} not found ${where}`;
      throw new SchedulerError("config", `${what}; install Slurm's client tools or set slurm-bin-dir`);
    }
    // Slurm's tools retry a missing slurm.conf for 60 s before they fail: say so at once.
    const conf = this.opts.slurmConf;
    if (conf && !fs.existsSync(conf)) {
      throw new SchedulerError("config", `slurm-cli: slurm-conf ${conf} does not exist`);
    }
    const ids = this.opts.user ? await resolveUser("slurm-cli-user", this.opts.user) : undefined;
    const p: SlurmPrepared = { paths: paths as Record<Tool, string>, ids, version: null };
    const r = await this.run(p, "sbatch", ["--version"]);
    const version = parseSlurmVersion(r.stdout);
    if (r.code !== 0 || !version) {
      const conf = this.opts.slurmConf
        ? `slurm-conf ${this.opts.slurmConf}`
        : "Slurm's default slurm.conf (set slurm-conf?)";
      const why = errorLines(r.stderr).join("; ") || r.stdout.trim();
      const what = `slurm-cli: '${p.paths.sbatch} --version' failed (exit ${r.code}) with ${conf}: ${why}`;
      throw new SchedulerError(classifyFailure(r.stderr), what);
    }
    p.version = version;
    return p;
  }

  private searchPath(): string {
    return this.opts.env?.PATH ?? process.env.PATH ?? SYS_PATH;
  }

  private findTools(): Partial<Record<Tool, string>> {
    return findTools(SLURM_TOOLS, this.opts.binDir ? [this.opts.binDir] : pathDirs(this.searchPath()));
  }

  async submit(job: JobSpec): Promise<JobHandle> {
    const p = await this.prepared();
    const call = buildSbatch(job, this.opts.extraParams ?? {});
    // The job's environment is sbatch's; SLURM_CONF lets sbatch find the cluster (Slurm gives every job it anyway).
    const env = { ...call.env, ...(this.opts.slurmConf ? { SLURM_CONF: this.opts.slurmConf } : {}) };
    const r = await this.run(p, "sbatch", call.args, { stdin: job.script, env });
    const id = r.code === 0 ? parseSbatchOutput(r.stdout) : null;
    if (id === null) {
      const refused = r.code !== 0 ? credentialRefused("sbatch", r) : null;
      if (refused) throw refused;
      const why = errorLines(r.stderr).join("; ") || `no job id in its output '${r.stdout.trim().slice(0, 200)}'`;
      const kind = r.code === 0 ? "protocol" : classifyFailure(r.stderr);
      throw new SchedulerError(kind, `sbatch refused the job (exit ${r.code}): ${why}`, errorLines(r.stderr));
    }
    for (const w of errorLines(r.stderr)) this.log(`slurm-cli: job ${id}: ${w}`);
    return { id };
  }

  /** One squeue for all ids; one sacct (then sacct -c without slurmdbd) for those squeue forgot. */
  protected async statusOf(wanted: string[], p: SlurmPrepared): Promise<Map<string, JobStatus>> {
    const out = new Map<string, JobStatus>();
    const json =
      this.opts.squeueOutput === "json" || (this.opts.squeueOutput !== "format" && squeueUsesJson(p.version));
    const q = await this.run(p, "squeue", squeueArgs(wanted, json));
    if (q.code !== 0 && !noSuchJobs(q.stderr)) throw this.failed("squeue", q);
    const parse = (): Map<string, JobStatus> =>
      json ? parseSqueueJson(parseJson(q.stdout), wanted) : parseSqueueFormat(q.stdout);
    const known = q.code !== 0 ? new Map<string, JobStatus>() : parse();
    for (const [id, st] of known) if (wanted.includes(id)) out.set(id, st);
    const gone = wanted.filter((id) => !out.has(id));
    if (gone.length === 0) return out;
    let why = "squeue and sacct do not know it";
    let a = await this.run(p, "sacct", sacctArgs(gone));
    if (a.code !== 0 && accountingDisabled(a.stderr)) a = await this.run(p, "sacct", sacctArgs(gone, true));
    if (a.code === 0) {
      for (const [id, st] of parseSacct(a.stdout)) if (gone.includes(id)) out.set(id, st);
    } else why = `squeue does not know it and sacct failed: ${errorLines(a.stderr).join("; ")}`;
    for (const id of gone) if (!out.has(id)) out.set(id, forgottenJob(id, `job ${id}: ${why}`));
    return out;
  }

  /** One scancel for all ids; jobs already finished or gone are not an error. */
  protected async cancelAll(wanted: string[], p: SlurmPrepared): Promise<void> {
    const r = await this.run(p, "scancel", wanted);
    const real = errorLines(r.stderr).filter((l) => !/already complet|Invalid job id/i.test(l));
    if (r.code !== 0 && real.length > 0) throw this.failed("scancel", r);
  }

  async findTagged(tag: string): Promise<string[]> {
    const p = await this.prepared();
    const r = await this.run(p, "squeue", squeueTaggedArgs());
    if (r.code !== 0) throw this.failed("squeue", r);
    return taggedIn(r.stdout, tag);
  }

  async doctor(): Promise<DoctorCheck[]> {
    const checks: DoctorCheck[] = [];
    const paths = this.findTools();
    const where = this.opts.binDir ? `in ${this.opts.binDir}` : "on PATH";
    for (const t of SLURM_TOOLS) checks.push({ ok: !!paths[t], what: t, detail: paths[t] ?? `not found ${where}` });
    if (this.opts.slurmConf) {
      const readable = fs.existsSync(this.opts.slurmConf);
      const detail = readable ? this.opts.slurmConf : `${this.opts.slurmConf} does not exist`;
      checks.push({ ok: readable, what: "slurm-conf", detail });
    }
    const p = await this.preparedOrCheck(checks, "sbatch --version");
    if (!p) return checks;
    checks.push({ ok: true, what: "Slurm version", detail: p.version?.release ?? "?" });
    checks.push({ ok: true, what: "jobs run as", detail: runsAs(this.opts.user, p.ids) });
    const q = await this.run(p, "squeue", ["-h", "--me", "-o", "%i"])
      .catch((e: Error) => ({ code: -1, stdout: "", stderr: e.message }));
    const jobs = `${q.stdout.split("\n").filter(Boolean).length} job(s) of this user`;
    const why = q.code === 0 ? jobs : (slurmAuthRefusal("slurm-cli", q.stderr) ?? errorLines(q.stderr).join("; "));
    checks.push({ ok: q.code === 0, what: "slurmctld answers squeue", detail: why });
    return checks;
  }

  private failed(tool: Tool, r: ToolOutput): SchedulerError {
    const refused = credentialRefused(tool, r);
    if (refused) return refused;
    const lines = errorLines(r.stderr);
    const what = `${tool} failed (exit ${r.code}): ${lines.join("; ") || "no error text"}`;
    return new SchedulerError(classifyFailure(r.stderr), what, lines);
  }

  /** One tool call from argv, with a bounded time. Default environment: nothing of nsh's own. */
  private run(p: SlurmPrepared, tool: Tool, args: string[], o: RunExtras = {}): Promise<ToolOutput> {
    const env = o.env ?? {
      PATH: SYS_PATH,
      LC_ALL: "C",
      SLURM_TIME_FORMAT: "%s", // squeue and sacct print times as unix seconds
      ...(this.opts.slurmConf ? { SLURM_CONF: this.opts.slurmConf } : {}),
    };
    const logged = `${tool}${args[0] === "--version" ? " --version" : ""}`;
    const { user, timeoutMs } = this.opts;
    const call = { backend: "slurm-cli", prepared: p, tool, args, env, stdin: o.stdin, user, timeoutMs, logged };
    return callTool({ ...call, server: "slurmctld", log: this.log });
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    const what = `squeue --json printed something that is not JSON: ${text.trim().slice(0, 200)}`;
    throw new SchedulerError("protocol", what);
  }
}

/** slurmctld refused the credential: said as such, not in the tool's bare words. */
function credentialRefused(tool: string, r: { stderr: string }): SchedulerError | null {
  const refused = slurmAuthRefusal("slurm-cli", r.stderr);
  const lines = errorLines(r.stderr);
  return refused ? new SchedulerError("auth", `${refused} (${tool}: ${lines.join("; ")})`, lines) : null;
}
