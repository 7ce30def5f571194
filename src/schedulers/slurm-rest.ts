// Slurm through slurmrestd (REST, JWT): the runner. It finds the API versions the server speaks,
// picks the newest one nsh knows (or the forced one), checks the token with a ping, then submits,
// polls and cancels jobs. Request bodies and reply parsing live in slurm-rest-shapes.ts.
//
// The JWT never leaves this module except in the X-SLURM-USER-TOKEN header: it is not a field of
// the scheduler object (so it cannot be logged or serialised with it), and every message built
// from remote or fetch text is passed through `redact` first.
import type { NshConfig } from "../config/nsh-conf.ts";
import {
  type ApiVersion,
  apiPath,
  chooseVersion,
  buildSubmitRequest,
  formatErrors,
  jwtClaims,
  jwtProblem,
  listedStatuses,
  looksLikeRejectedToken,
  parseErrors,
  parseJobResponse,
  parseSubmitResponse,
  servedVersions,
  taggedJobs,
  SUPPORTED_VERSIONS,
} from "./slurm-rest-shapes.ts";
import {
  type DoctorCheck,
  type JobHandle,
  type JobSpec,
  type JobStatus,
  type JsonObject,
  type RequestGate,
  type Scheduler,
  SchedulerError,
  type SchedulerErrorKind,
} from "./scheduler.ts";
import { jwtToken } from "./slurm-jwt.ts";
import {
  authProbePath,
  authProbeVerdict,
  cancelDone,
  cancelErrors,
  INVALID_JOB_ID,
  isUnknownJobReply,
  pingVerdict,
  proofKeyOf,
  refusedTokenWhy,
} from "./slurm-rest-verdicts.ts";
export { jwtToken, type JwtToken } from "./slurm-jwt.ts";
import { safeUserName } from "./slurm-jwt.ts";
import { restDoctorChecks } from "./slurm-rest-doctor.ts";
import { type ApiScheme, cleartextTokenWarning, exchange, readCaFile, slurmApiBaseUrl } from "./slurm-transport.ts";

export type { FetchInit, FetchLike, Negotiated, SlurmRestOptions } from "./slurm-rest-options.ts";
import type { FetchLike, Negotiated, Reply, SlurmRestOptions } from "./slurm-rest-options.ts";

const tokens = new WeakMap<SlurmRestScheduler, string>();
const SLOW_PING_MS = 5000; // a refused token fails in ms; a dead slurmctld only after its MessageTimeout
/** Base URLs whose clear-text warning this process has given (once per process, not per build). */
const warnedCleartext = new Set<string>();
const isRequestLine = (line: string) => /^slurm: [A-Z]+ \//.test(line);

export class SlurmRestScheduler implements Scheduler {
  readonly kind = "slurm" as const;
  readonly baseUrl: string;
  readonly user: string;
  private readonly where: string;
  private readonly wanted: string;
  private readonly tokenSource: string;
  private readonly tokenWarnings: string[];
  private readonly extraParams: JsonObject;
  readonly requestTimeoutMs: number;
  private readonly scheme: ApiScheme;
  private readonly host: string;
  private readonly port: number;
  private readonly caFile: string;
  private readonly ca: string | undefined;
  private readonly fetchFn: FetchLike;
  private readonly log: (line: string) => void;
  private readonly remembered: SlurmRestOptions["rememberedVersion"];
  private readonly proof: SlurmRestOptions["proof"];
  private negotiation: Promise<Negotiated> | null = null;
  private result: Negotiated | null = null;
  private provenKey: string | undefined;

  constructor(opts: SlurmRestOptions) {
    tokens.set(this, opts.token);
    this.where = `${opts.host}:${opts.port}`;
    this.scheme = opts.scheme ?? "http";
    this.host = opts.host;
    this.port = opts.port;
    this.baseUrl = slurmApiBaseUrl(this.scheme, opts.host, opts.port);
    this.caFile = opts.caFile?.trim() ?? "";
    this.ca = this.caFile ? readCaFile(this.caFile) : undefined;
    this.user = opts.user || jwtClaims(opts.token)?.sun || safeUserName();
    this.wanted = opts.apiVersion?.trim() || "auto";
    this.tokenSource = opts.tokenSource ?? "slurm-jwt-token";
    this.tokenWarnings = opts.tokenWarnings ?? [];
    this.extraParams = opts.extraParams ?? {};
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 20_000;
    this.fetchFn = opts.fetch ?? ((url, init) => fetch(url, init));
    this.log = opts.log ?? (() => {});
    this.remembered = opts.rememberedVersion;
    this.proof = opts.proof;
  }

  /** Settings of nsh.conf: slurm-api-host/port/version, slurm-user, slurm-extra-submission-params and the JWT. */
  static fromConfig(config: NshConfig, env: Record<string, string | undefined> = process.env, more: Partial<SlurmRestOptions> = {}): SlurmRestScheduler {
    const jwt = jwtToken(config, env);
    // Without a log of its own (nsh doctor, nsh cancel) warnings go to stderr, request lines nowhere.
    const log = more.log ?? ((l: string) => void (isRequestLine(l) || process.stderr.write(`nsh: warning: ${l}\n`)));
    for (const w of jwt.warnings) log(w);
    return new SlurmRestScheduler({
      host: config["slurm-api-host"],
      port: config["slurm-api-port"],
      scheme: config["slurm-api-scheme"] as ApiScheme,
      caFile: config["slurm-api-ca-file"],
      log,
      token: jwt.token,
      tokenSource: jwt.source,
      tokenWarnings: jwt.warnings,
      user: config["slurm-user"] || undefined,
      apiVersion: config["slurm-api-version"],
      extraParams: config["slurm-extra-submission-params"] as JsonObject,
      ...more,
    });
  }

  describe(): string {
    const release = this.result?.release ? ` (Slurm ${this.result.release})` : "";
    const api = this.result ? `API ${this.result.version}${release}` : `API ${this.wanted} (not negotiated yet)`;
    return `slurm REST at ${this.baseUrl}, ${api}, user ${this.user}`;
  }

  /** The version in use (negotiated once, then cached), after a ping proved the token works. */
  negotiate(): Promise<Negotiated> {
    this.negotiation ??= this.doNegotiate().then(
      (r) => (this.result = r),
      (e: unknown) => {
        this.negotiation = null; // a later call may succeed (slurmrestd restarted, token renewed)
        throw e;
      },
    );
    return this.negotiation;
  }

  /**
   * A wrong token or an unreachable slurmrestd is found here, before anything is uploaded, unless a
   * hook proved this token with this server a moment ago: then nothing is asked. `gate` comes first
   * when a request goes out.
   */
  async prepare(gate?: RequestGate): Promise<void> {
    if (!this.negotiation && this.trustProof()) return;
    if (!this.result) await gate?.();
    await this.negotiate();
    this.proof?.record(this.proofKey());
  }

  /** The version as proven by an earlier hook, when there is such a proof and a version to go with it. */
  private trustProof(): boolean {
    if (!this.proof?.recent(this.proofKey())) return false;
    if (jwtProblem(tokens.get(this)!, Math.floor(Date.now() / 1000))) return false;
    const remembered = this.wanted === "auto" ? this.remembered?.get() : undefined;
    const known = this.wanted !== "auto" ? chooseVersion([], this.wanted) : remembered ? chooseVersion([remembered], "auto") : undefined;
    if (!known?.ok) return false;
    this.result = { version: known.version, served: [], via: "proven", release: null, discoveryMs: 0, pingMs: 0 };
    this.negotiation = Promise.resolve(this.result);
    return true;
  }

  private proofKey(): string {
    return (this.provenKey ??= proofKeyOf(this.baseUrl, this.user, tokens.get(this)!));
  }

  /** What an earlier hook proved no longer holds (the API is gone, the token refused): ask again. */
  private forgetProof(): void {
    this.proof?.forget(this.proofKey());
    if (this.result?.via !== "proven") return;
    this.remembered?.forget();
    this.negotiation = null;
    this.result = null;
  }

  /** The JWT's source, slurmrestd and its API version, then an authenticated request (a 200 ping proves no token). */
  doctor(): Promise<DoctorCheck[]> {
    return restDoctorChecks(this, { source: this.tokenSource, warnings: this.tokenWarnings, user: this.user });
  }

  /** GET /jobs changed after a future time: costs slurmctld nothing, but only an accepted token gets 200/304. */
  async checkToken(version: ApiVersion): Promise<void> {
    const r = await this.request("GET", authProbePath(version, Math.floor(Date.now() / 1000)));
    const v = authProbeVerdict(r.status, r.json);
    if (v.accepted) return;
    if (v.tokenRejected) throw this.authError(parseErrors(r.json), r.status);
    const what = `slurmctld did not answer an authenticated request through slurmrestd at ${this.where}`;
    throw this.error("unreachable", `${what}: ${v.why}`);
  }

  async submit(job: JobSpec): Promise<JobHandle> {
    const { version } = await this.negotiate();
    const path = apiPath.submit(version);
    const reply = await this.request("POST", path, buildSubmitRequest(version, job, this.extraParams));
    // slurmrestd was upgraded or reconfigured since the proof: negotiate (and submit) again.
    if (reply.status === 404 && this.result?.via === "proven") return (this.forgetProof(), this.submit(job));
    const parsed = parseSubmitResponse(version, this.expectJson(reply, "POST", path));
    if (!parsed.ok) throw this.failure(reply, parsed.message, parsed.errors.map((e) => e.message));
    for (const w of parsed.warnings) this.log(`slurm: job ${parsed.jobId}: ${this.redact(w)}`);
    return { id: parsed.jobId };
  }

  async status(id: string): Promise<JobStatus> {
    const { version } = await this.negotiate();
    const path = apiPath.job(version, id);
    const reply = await this.request("GET", path);
    // 24.11+ answer an unknown job with 404 (22.05: 500): a job reply all the same, not a missing endpoint.
    const json = isUnknownJobReply(reply.status, reply.json) ? reply.json : this.expectJson(reply, "GET", path);
    const parsed = parseJobResponse(version, json, id);
    if (parsed.ok) return parsed.status;
    if (parsed.notFound) {
      // Finished jobs vanish after MinJobAge; a poller must stop waiting for it.
      const reason = `slurmctld does not know job ${id} (${formatErrors(parsed.errors)})`;
      return { id, state: "unknown", rawState: [], reason, nodes: null, exitCode: null, signal: null, startTime: null, endTime: null };
    }
    throw this.failure(reply, parsed.message, parsed.errors.map((e) => e.message));
  }

  async cancel(id: string): Promise<void> {
    const { version } = await this.negotiate();
    const path = apiPath.job(version, id);
    const reply = await this.request("DELETE", path);
    const errors = cancelErrors(this.expectJson(reply, "DELETE", path, true));
    // "Invalid job id" also answers an expired token on 22.05: only believe it with a token that may be valid.
    const unknown = errors.some((e) => e.code === INVALID_JOB_ID);
    const tokenBad = unknown && jwtProblem(tokens.get(this)!, Math.floor(Date.now() / 1000)) !== null;
    if (cancelDone(reply.status, errors) && !tokenBad) return;
    throw this.failure(reply, `cancelling job ${id} failed: ${formatErrors(errors) || `HTTP ${reply.status}`}`, errors.map((e) => e.message));
  }

  async findTagged(tag: string): Promise<string[]> {
    return taggedJobs((await this.listJobs()).json, tag);
  }

  /** One GET /jobs for many jobs (one RPC for slurmctld, as squeue makes), not one GET each. */
  async statusMany(ids: string[]): Promise<Map<string, JobStatus>> {
    const { version, json } = await this.listJobs();
    return listedStatuses(version, json, ids);
  }

  private async listJobs(): Promise<{ version: ApiVersion; json: unknown }> {
    const { version } = await this.negotiate();
    const path = apiPath.jobs(version);
    const reply = await this.request("GET", path);
    const json = this.expectJson(reply, "GET", path);
    const errors = parseErrors(json);
    if (reply.status !== 200 || errors.length > 0) {
      const why = formatErrors(errors) || `HTTP ${reply.status}`;
      throw this.failure(reply, `listing jobs failed: ${why}`, errors.map((e) => e.message));
    }
    return { version, json };
  }

  private async doNegotiate(ignoreRemembered = false): Promise<Negotiated> {
    const problem = jwtProblem(tokens.get(this)!, Math.floor(Date.now() / 1000));
    if (problem) throw this.error("auth", `authentication failed: check slurm-jwt-token (token from ${this.tokenSource}: ${problem})`);
    const t0 = performance.now();
    let served: string[] = [];
    let via: Negotiated["via"] = "forced";
    let version: ApiVersion;
    const remembered = this.wanted === "auto" && !ignoreRemembered ? this.remembered?.get() : undefined;
    const known = remembered ? chooseVersion([remembered], "auto") : undefined;
    if (known?.ok) {
      version = known.version;
      via = "remembered";
    } else if (this.wanted === "auto") {
      ({ served, via } = await this.discover());
      const choice = chooseVersion(served, "auto");
      if (!choice.ok) throw this.error("version", choice.error);
      version = choice.version;
    } else {
      const choice = chooseVersion([], this.wanted);
      if (!choice.ok) throw this.error("version", choice.error);
      version = choice.version;
    }
    const discoveryMs = performance.now() - t0;
    const ping = await this.request("GET", apiPath.ping(version));
    if (ping.status === 404 && via === "remembered") {
      // slurmrestd was upgraded or reconfigured since: find out again.
      this.remembered?.forget();
      return this.doNegotiate(true);
    }
    if (ping.status === 404 && via === "forced") {
      const found = await this.discover().catch(() => ({ served: [] as string[] }));
      const choice = chooseVersion(found.served.length > 0 ? found.served : ["(unknown)"], this.wanted);
      throw this.error("version", choice.ok ? `slurmrestd at ${this.where} has no ${apiPath.ping(version)}` : choice.error);
    }
    const json = this.expectJson(ping, "GET", apiPath.ping(version));
    const errors = parseErrors(json);
    // 24.11+ answer a refused token's ping with 200 and the controller DOWN: ask with the token to tell why.
    if (ping.status === 200 && errors.length === 0 && !pingVerdict(json).up) await this.checkToken(version);
    if (ping.status !== 200 || errors.length > 0) {
      if (ping.ms >= SLOW_PING_MS) {
        const why = formatErrors(errors) || `HTTP ${ping.status}`;
        const took = `ping took ${Math.round(ping.ms)} ms`;
        throw this.error("unreachable", `slurmctld did not answer slurmrestd at ${this.where} (${took}): ${why}`);
      }
      throw this.authError(errors, ping.status);
    }
    if (via === "openapi" || via === "ping-probe") this.remembered?.set(version);
    const meta = (json as { meta?: { Slurm?: { release?: unknown }; slurm?: { release?: unknown } } }).meta;
    const release = meta?.slurm?.release ?? meta?.Slurm?.release;
    return { version, served, via, release: typeof release === "string" ? release : null, discoveryMs, pingMs: ping.ms };
  }

  /** Served versions: the OpenAPI document (22.05 … 25.11 serve /openapi/v3), else ping probes newest first. */
  private async discover(): Promise<{ served: string[]; via: "openapi" | "ping-probe" }> {
    const doc = await this.request("GET", "/openapi/v3");
    if (doc.status === 401 || doc.status === 403) throw this.authError([], doc.status);
    const served = doc.status === 200 && doc.json !== undefined ? servedVersions(doc.json) : [];
    if (served.length > 0) return { served, via: "openapi" };
    for (const v of [...SUPPORTED_VERSIONS].reverse()) {
      const r = await this.request("GET", apiPath.ping(v));
      if (r.status !== 404) return { served: [v], via: "ping-probe" };
    }
    return { served: [], via: "ping-probe" };
  }

  private async request(method: string, path: string, body?: JsonObject): Promise<Reply> {
    const cleartext = !warnedCleartext.has(this.baseUrl) && cleartextTokenWarning(this.scheme, this.host, this.port);
    if (cleartext) this.log(cleartext);
    warnedCleartext.add(this.baseUrl);
    const headers: Record<string, string> = {
      Accept: "application/json",
      "X-SLURM-USER-NAME": this.user,
      "X-SLURM-USER-TOKEN": tokens.get(this)!,
    };
    if (body) headers["Content-Type"] = "application/json";
    const target = { fetchFn: this.fetchFn, baseUrl: this.baseUrl, where: this.where, scheme: this.scheme, caFile: this.caFile };
    const sent = await exchange(target, { method, path, headers, body, timeoutMs: this.requestTimeoutMs, ...(this.ca ? { ca: this.ca } : {}) });
    if ("kind" in sent) throw this.error(sent.kind, sent.message);
    const { res, text, ms } = sent;
    this.log(`slurm: ${method} ${path} -> ${res.status} in ${ms.toFixed(1)} ms`);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    // 511: 24.11+ say so for a token slurmctld refused ("Protocol authentication error").
    const refused = res.status === 401 || res.status === 403 || res.status === 511;
    if (refused) throw this.authError(parseErrors(json), res.status);
    return { status: res.status, json, text, ms };
  }

  /** The reply's JSON; a clear error for 404s and for replies that are not JSON (proxies, wrong port). */
  private expectJson(reply: Reply, method: string, path: string, emptyOk = false): unknown {
    if (reply.status === 404) {
      const body = this.redact(reply.text.trim().slice(0, 200));
      throw this.error("version", `slurmrestd at ${this.where} has no ${method} ${path} (HTTP 404): ${body}`);
    }
    if (reply.json !== undefined || (emptyOk && reply.text.trim() === "")) return reply.json ?? {};
    const snippet = reply.text.trim().slice(0, 200) || "(empty body)";
    throw this.error("protocol", `slurmrestd at ${this.where} sent a non-JSON reply to ${method} ${path} (HTTP ${reply.status}): ${this.redact(snippet)}`);
  }

  private failure(reply: Reply, message: string, details: string[]): SchedulerError {
    const errors = parseErrors(reply.json);
    // Tokens expire during long builds (scontrol token's default is 30 min); on 22.05 slurmctld
    // then answers a job query with a misleading "Unable to find JobId", so check locally first.
    const problem = jwtProblem(tokens.get(this)!, Math.floor(Date.now() / 1000));
    if (problem) return this.error("auth", `authentication failed: check slurm-jwt-token (token from ${this.tokenSource}: ${problem})`, details);
    if (reply.status >= 500 && looksLikeRejectedToken(errors)) return this.authError(errors, reply.status);
    return this.error("rejected", message, details);
  }

  private authError(errors: { message: string }[], status: number): SchedulerError {
    this.forgetProof();
    // A token that expired meanwhile says so (24.11+ answer it with a bare 511).
    const expired = jwtProblem(tokens.get(this)!, Math.floor(Date.now() / 1000));
    if (expired) return this.error("auth", `authentication failed: check slurm-jwt-token (token from ${this.tokenSource}: ${expired})`);
    const why = refusedTokenWhy(status, errors);
    const message = `authentication failed: check slurm-jwt-token (token from ${this.tokenSource}, user ${this.user}: ${why})`;
    return this.error("auth", message, errors.map((e) => e.message));
  }

  private error(kind: SchedulerErrorKind, message: string, details: string[] = []): SchedulerError {
    return new SchedulerError(kind, this.redact(message), details.map((d) => this.redact(d)));
  }

  private redact(text: string): string {
    const token = tokens.get(this);
    return token ? text.split(token).join("<redacted>") : text;
  }
}
