// Slurm through libslurm (job-scheduler = slurm-native): no slurmrestd, no JWT; the login node's
// own libslurm and munge. The runner: it builds or finds the shim (slurm-native-build.ts), opens it
// (slurm-native-ffi.ts), and submits, polls and cancels through its flat calls. Pure parts live in
// slurm-native-shapes.ts.
//
// libslurm's calls are synchronous: while slurmctld is slow to answer, the event loop waits (one
// call at most Slurm's MessageTimeout). libslurm is initialised once per process, with one slurm.conf.
import * as fs from "node:fs";
import * as path from "node:path";
import type { NshConfig } from "../config/nsh-conf.ts";
import { stateDir } from "../state/dir.ts";
import { isTerminal, type JobHandle, type JobSpec, type JobStatus, type Scheduler, SchedulerError } from "./scheduler.ts";
import { type BuiltShim, ensureShim, findCompiler, findIncludeDir, findLibslurm, missing } from "./slurm-native-build.ts";
import { cstr, cText, openShim, type ShimSymbols } from "./slurm-native-ffi.ts";
import {
  commentWords,
  errnoKind,
  forgottenJob,
  numericIds,
  packEnvironment,
  parseConstraints,
  parseJobLines,
  submitNumbers,
} from "./slurm-native-shapes.ts";
import { slurmAuthRefusal } from "./slurm-auth.ts";
import { slurmVersionText } from "./slurm-native-shim.ts";

type Env = Record<string, string | undefined>;

export interface SlurmNativeOptions {
  /** slurm.conf (slurm-conf); empty: $SLURM_CONF, else /etc/slurm/slurm.conf */
  conf?: string;
  /** the user jobs run as (slurm-native-user); empty: the user nsh runs as */
  user?: string;
  partition?: string;
  includeDir?: string;
  libDir?: string;
  compiler?: string;
  /** where the compiled shim is kept (private, 0700) */
  cacheDir: string;
  env?: Env;
  log?: (line: string) => void;
}

const ALREADY_DONE = 2021; // ESLURM_ALREADY_DONE
const INVALID_JOB_ID = 2017; // ESLURM_INVALID_JOB_ID
const USER_ID_MISSING = 2010; // ESLURM_USER_ID_MISSING: "Invalid user id", also for a user we may not name
const DEFAULT_CONFS = ["/etc/slurm/slurm.conf", "/etc/slurm-llnl/slurm.conf", "/run/slurm/conf/slurm.conf"];
let initialisedWith: string | undefined; // libslurm reads one slurm.conf per process

/** The options nsh.conf's slurm-conf and slurm-native-* settings give; the shim cache lives in the state directory. */
export const nativeOptions = (conf: NshConfig, env: Env): SlurmNativeOptions => ({
  conf: conf["slurm-conf"],
  user: conf["slurm-native-user"],
  partition: conf["slurm-native-partition"],
  includeDir: conf["slurm-native-include-dir"],
  libDir: conf["slurm-native-lib-dir"],
  compiler: conf["slurm-native-cc"],
  cacheDir: path.join(conf["state-dir"] || stateDir(env), "slurm-native"),
  env,
});

export class SlurmNativeScheduler implements Scheduler {
  readonly kind = "slurm-native" as const;
  private readonly o: SlurmNativeOptions;
  private readonly env: Env;
  private readonly log: (line: string) => void;
  private ready: Promise<void> | null = null;
  private lib: ShimSymbols | null = null;
  /** the shim in use, once prepared */
  shim: BuiltShim | null = null;
  libslurmPath = "";

  constructor(o: SlurmNativeOptions) {
    this.o = o;
    this.env = o.env ?? process.env;
    this.log = o.log ?? (() => {});
  }

  /** nsh.conf's slurm-conf and slurm-native-* settings; the shim cache lives in the state directory. */
  static fromConfig(conf: NshConfig, env: Env = process.env, opts: Partial<SlurmNativeOptions> = {}): SlurmNativeScheduler {
    return new SlurmNativeScheduler({ ...nativeOptions(conf, env), ...opts });
  }

  describe(): string {
    const v = this.shim ? `Slurm ${this.shim.slurmVersion} (${this.libslurmPath || "libslurm"})` : "libslurm (not loaded yet)";
    const conf = this.o.conf || this.env.SLURM_CONF || "default";
    return `slurm-native via ${v}, slurm.conf ${conf}, jobs run as ${this.o.user || "the calling user"}`;
  }

  prepare(): Promise<void> {
    this.ready ??= Promise.resolve()
      .then(() => this.load())
      .catch((e: unknown) => {
        this.ready = null; // a later call may succeed (headers installed meanwhile)
        throw e;
      });
    return this.ready;
  }

  private load(): void {
    const conf = this.slurmConf();
    this.shim = ensureShim({
      includeDir: this.o.includeDir ?? "",
      libDir: this.o.libDir ?? "",
      compiler: this.o.compiler ?? "",
      cacheDir: this.o.cacheDir,
      pathEnv: this.env.PATH ?? "",
      log: this.log,
    });
    try {
      this.lib = openShim(this.shim.file, this.env);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      if (/libslurm[^:]*: cannot open shared object/.test(why)) {
        throw missing(
          `libslurm cannot be loaded (${why}); it changed since ${this.shim.file} was built`,
          "install libslurm matching the headers (libslurm-dev), then delete that file",
        );
      }
      throw new SchedulerError("config", `slurm-native: cannot load ${this.shim.file}: ${why}`);
    }
    const built = slurmVersionText(Number(this.lib.nsh_shim_slurm_version()));
    if (built !== this.shim.slurmVersion) {
      const why = `${this.shim.file} was built for Slurm ${built}, the headers say ${this.shim.slurmVersion}`;
      throw new SchedulerError("config", `slurm-native: ${why}`);
    }
    if (initialisedWith !== undefined && initialisedWith !== conf) {
      const why = `libslurm already read ${initialisedWith} in this process; it cannot read ${conf} too`;
      throw new SchedulerError("config", `slurm-native: ${why}`);
    }
    const libBuf = Buffer.alloc(4096);
    const err = Buffer.alloc(1024);
    if (this.lib.nsh_shim_init(cstr(conf), libBuf, libBuf.length, err, err.length) !== 0) {
      throw new SchedulerError("config", `slurm-native: initialising libslurm failed: ${cText(err)}`);
    }
    initialisedWith = conf;
    this.libslurmPath = cText(libBuf);
  }

  /**
   * The slurm.conf libslurm will read. It must exist: libslurm exits the whole process when it
   * finds none, so nsh looks first (configless sites point slurm-conf at slurmd's cached copy).
   */
  private slurmConf(): string {
    const named = this.o.conf || this.env.SLURM_CONF || "";
    if (named) {
      const from = this.o.conf ? "slurm-conf" : "SLURM_CONF";
      if (!fs.existsSync(named)) throw new SchedulerError("config", `slurm-native: slurm.conf ${named} (from ${from}) does not exist`);
      return path.resolve(named);
    }
    const found = DEFAULT_CONFS.find((f) => fs.existsSync(f));
    if (!found) {
      throw new SchedulerError("config", `slurm-native: no slurm.conf in ${DEFAULT_CONFS.join(", ")}; set slurm-conf`);
    }
    return found;
  }

  private async symbols(): Promise<ShimSymbols> {
    await this.prepare();
    return this.lib!;
  }

  private failure(what: string, rc: number, text: string): SchedulerError {
    const e = -rc;
    const msg = text || this.lib?.nsh_shim_strerror(e) || `error ${e}`;
    const refused = slurmAuthRefusal("slurm-native", msg);
    if (refused) return new SchedulerError("auth", `${refused} (${what}: ${msg}, Slurm error ${e})`, [msg]);
    return new SchedulerError(errnoKind(e), `slurm-native: ${what}: ${msg} (Slurm error ${e})`, [msg]);
  }

  async submit(job: JobSpec): Promise<JobHandle> {
    // Checked before anything loads: a refused derivation needs no libslurm to be told so.
    const c = parseConstraints(job.extra);
    if (!c.ok) throw new SchedulerError("rejected", c.error);
    const lib = await this.symbols();
    const env = packEnvironment(job.environment);
    const err = Buffer.alloc(1024);
    const opt = (s: string | undefined) => cstr(s ?? "");
    const rc = Number(
      lib.nsh_shim_submit(
        cstr(job.script),
        cstr(job.name),
        cstr(job.workingDirectory),
        env.buf,
        env.count,
        opt(job.stdout),
        opt(job.stderr),
        opt(this.o.partition),
        opt(job.tag),
        opt(this.o.user),
        submitNumbers(job.timeLimitMinutes, c.value),
        err,
        err.length,
      ),
    );
    if (rc === -USER_ID_MISSING && this.o.user && process.getuid?.() !== 0) {
      throw new SchedulerError(
        "auth",
        `slurm-native: slurm-native-user = ${this.o.user}, but only root (or Slurm's SlurmUser) may submit a job ` +
          `for another user, and nsh runs as uid ${process.getuid?.()}: run nsh as root or leave slurm-native-user ` +
          `empty (Slurm: ${cText(err)})`,
      );
    }
    if (rc <= 0) throw this.failure(`submitting ${job.name}`, rc, cText(err));
    const note = cText(err);
    if (note) this.log(`slurm-native: job ${rc}: ${note}`);
    return { id: String(rc) };
  }

  async status(id: string): Promise<JobStatus> {
    return (await this.statusMany([id])).get(id)!;
  }

  /** One libslurm call for all of them (one job: that job's record; several: the user's jobs). */
  async statusMany(ids: string[]): Promise<Map<string, JobStatus>> {
    const out = new Map<string, JobStatus>();
    if (ids.length === 0) return out;
    const parsed = numericIds(ids);
    if (!parsed.ok) throw new SchedulerError("config", `slurm-native: ${parsed.error}`);
    const jobs = await this.jobs(parsed.ids);
    for (const j of jobs) out.set(j.status.id, j.status);
    for (const id of ids) if (!out.has(id)) out.set(id, forgottenJob(id));
    return out;
  }

  async cancel(id: string): Promise<void> {
    await this.cancelMany([id]);
  }

  async cancelMany(ids: string[]): Promise<void> {
    const parsed = numericIds(ids);
    if (!parsed.ok) throw new SchedulerError("config", `slurm-native: ${parsed.error}`);
    const lib = await this.symbols();
    const failed: string[] = [];
    for (const id of parsed.ids) {
      const rc = lib.nsh_shim_cancel(id, 0);
      // Already finished, or so long ago that slurmctld forgot it: the job is not running.
      if (rc === 0 || rc === -ALREADY_DONE || rc === -INVALID_JOB_ID) continue;
      failed.push(`${id}: ${lib.nsh_shim_strerror(rc)} (Slurm error ${-rc})`);
    }
    if (failed.length > 0) {
      throw new SchedulerError("rejected", `slurm-native: cancelling failed for job ${failed.join("; ")}`, failed);
    }
  }

  async findTagged(tag: string): Promise<string[]> {
    const jobs = await this.jobs(new Uint32Array(0));
    return jobs
      .filter((j) => commentWords(j.comment).includes(tag) && !isTerminal(j.status.state))
      .map((j) => j.status.id);
  }

  private async jobs(ids: Uint32Array): Promise<ReturnType<typeof parseJobLines>> {
    const lib = await this.symbols();
    const err = Buffer.alloc(1024);
    let cap = 64 * 1024;
    for (;;) {
      const out = Buffer.alloc(cap);
      const n = Number(lib.nsh_shim_jobs(cstr(this.o.user ?? ""), ids, ids.length, out, cap, err, err.length));
      if (n < 0) throw this.failure("reading job states", n, cText(err));
      if (n < cap) return parseJobLines(out.toString("utf8", 0, n));
      cap = n + 1; // the list grew past the buffer: ask again with room for all of it
    }
  }

  /** Headers, compiler, shim, slurm.conf and slurmctld, each as one line for `nsh doctor`. */
  async doctor(): Promise<{ ok: boolean; what: string; detail: string }[]> {
    const checks: { ok: boolean; what: string; detail: string }[] = [];
    const check = (what: string, fn: () => string): void => {
      try {
        checks.push({ ok: true, what, detail: fn() });
      } catch (e) {
        checks.push({ ok: false, what, detail: e instanceof Error ? e.message : String(e) });
      }
    };
    check("slurm headers", () => findIncludeDir(this.o.includeDir ?? ""));
    const PATH = this.env.PATH ?? "";
    check("C compiler", () => findCompiler(this.o.compiler ?? "", PATH));
    check("libslurm", () => findLibslurm(this.o.libDir ?? "", findCompiler(this.o.compiler ?? "", PATH), PATH));
    try {
      await this.prepare();
      const s = this.shim!;
      const how = s.compiled ? "compiled now" : "cached";
      checks.push({ ok: true, what: "libslurm shim", detail: `${s.file} (Slurm ${s.slurmVersion}, ${how}; ${this.libslurmPath})` });
      const rc = this.lib!.nsh_shim_ping();
      const said = rc === 0 ? "" : `${this.lib!.nsh_shim_strerror(rc)} (Slurm error ${-rc})`;
      const refused = rc === 0 ? null : slurmAuthRefusal("slurm-native", said);
      const detail = rc === 0 ? `answers (slurm.conf ${initialisedWith})` : refused ? `${refused} (${said})` : said;
      checks.push({ ok: rc === 0, what: "slurmctld", detail });
    } catch (e) {
      checks.push({ ok: false, what: "libslurm shim", detail: e instanceof Error ? e.message : String(e) });
    }
    return checks;
  }
}

/** The factory the scheduler registry calls for job-scheduler = slurm-native. */
export const fromConfig = (conf: NshConfig, env: Env = process.env, opts: Partial<SlurmNativeOptions> = {}): SlurmNativeScheduler =>
  SlurmNativeScheduler.fromConfig(conf, env, opts);
