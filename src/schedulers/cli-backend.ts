// What the command-line backends (slurm-cli, pbs-cli) share as schedulers: the options, the
// preparation made once, single-job calls as one-id batches, and job ids checked before any tool
// sees them. Each backend adds its tools, settings, parsers and messages.
import type { DoctorCheck, JobStatus, RequestGate } from "./scheduler.ts";
import { SchedulerError } from "./scheduler.ts";
import { type CliToolOptions, Once, type Prepared } from "./cli-tool.ts";

export abstract class CliBackend<Tool extends string, Version, Options extends CliToolOptions> {
  protected readonly opts: Options;
  protected readonly log: (line: string) => void;
  private readonly preparation = new Once(() => this.doPrepare());

  // Every option is optional, so {} is a whole set of options.
  constructor(opts: Options = {} as Options) {
    this.opts = opts;
    this.log = opts.log ?? (() => {});
  }

  /** Finds the tools and the user, and asks the scheduler for its version; once, then cached. */
  async prepare(gate?: RequestGate): Promise<void> {
    if (gate && this.prepareAsksServer()) await gate();
    await this.prepared();
  }

  /** Whether the preparation asks the scheduler's server (pbs-cli: qstat -B), not only local tools. */
  protected prepareAsksServer(): boolean {
    return false;
  }

  protected prepared(): Promise<Prepared<Tool, Version>> {
    return this.preparation.get();
  }

  protected abstract doPrepare(): Promise<Prepared<Tool, Version>>;

  /** The preparation for doctor: a failure is its check `what`, and null. */
  protected async preparedOrCheck(checks: DoctorCheck[], what: string): Promise<Prepared<Tool, Version> | null> {
    try {
      return await this.prepared();
    } catch (e) {
      checks.push({ ok: false, what, detail: (e as Error).message });
      return null;
    }
  }

  async status(id: string): Promise<JobStatus> {
    return (await this.statusMany([id])).get(id)!;
  }

  async statusMany(ids: string[]): Promise<Map<string, JobStatus>> {
    const wanted = this.distinctIds(ids);
    if (wanted.length === 0) return new Map();
    return this.statusOf(wanted, await this.prepared());
  }

  /** statusMany of distinct, checked ids (at least one) */
  protected abstract statusOf(wanted: string[], p: Prepared<Tool, Version>): Promise<Map<string, JobStatus>>;

  async cancel(id: string): Promise<void> {
    await this.cancelMany([id]);
  }

  async cancelMany(ids: string[]): Promise<void> {
    const wanted = this.distinctIds(ids);
    if (wanted.length > 0) await this.cancelAll(wanted, await this.prepared());
  }

  /** cancelMany of distinct, checked ids (at least one) */
  protected abstract cancelAll(wanted: string[], p: Prepared<Tool, Version>): Promise<void>;

  /** What a job id looks like, and whose ids they are (for "not PBS job ids: …") */
  protected abstract readonly jobIds: { valid: (id: string) => boolean; of: string };

  /**
   * Each id once. Anything but a job id is a caller's bug, not something to pass on (it could read
   * as an option).
   */
  protected distinctIds(ids: string[]): string[] {
    const wanted = [...new Set(ids)];
    const bad = wanted.filter((id) => !this.jobIds.valid(id));
    if (bad.length > 0) {
      throw new SchedulerError("config", `not ${this.jobIds.of} job ids: ${bad.map((b) => `'${b}'`).join(", ")}`);
    }
    return wanted;
  }
}
