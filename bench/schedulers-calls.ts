// The pure parts of bench/schedulers.ts: which backends, what nsh.conf lines choose each on its lab,
// the wrapper scripts that count scheduler calls, how each kind of record (an HTTP request through the
// proxy, a line of a CLI wrapper's log, an NSH_FFI_TRACE line) becomes a submit, a status query, a
// cancel or another call, and the timings read from nsh's job records and slurmctld's log.

export const SCHED_BACKENDS = ["slurm", "slurm-cli", "slurm-native", "pbs", "pbs-cli"] as const;
export type SchedBackend = (typeof SCHED_BACKENDS)[number];

export const isPbs = (b: SchedBackend): boolean => b.startsWith("pbs");

/** Where each backend's calls are counted (a column of the table). */
export const COUNTED_AT: Record<SchedBackend, string> = {
  slurm: "HTTP proxy in front of slurmrestd",
  "slurm-cli": "wrappers in slurm-bin-dir",
  "slurm-native": "NSH_FFI_TRACE (libslurm shim calls)",
  pbs: "NSH_FFI_TRACE (libpbs calls)",
  "pbs-cli": "wrappers in pbs-bin-dir",
};

/** NSH_BENCH_BACKENDS: a comma list of backends, in the order given; empty means all. */
export function parseBackends(text: string | undefined): SchedBackend[] {
  const names = (text ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) return [...SCHED_BACKENDS];
  for (const n of names) {
    if (!(SCHED_BACKENDS as readonly string[]).includes(n)) {
      throw new Error(`NSH_BENCH_BACKENDS: expected some of ${SCHED_BACKENDS.join(", ")}, got '${n}'`);
    }
  }
  return [...new Set(names)] as SchedBackend[];
}

export interface ConfContext {
  /** the counting proxy's port (slurm) */
  proxyPort?: number;
  /** slurm.conf of the Slurm lab (slurm-cli, slurm-native) */
  slurmConf?: string;
  /** the directory of counting wrappers (slurm-cli, pbs-cli) */
  binDir?: string;
  /** the PBS lab's user (pbs-cli-user) */
  pbsUser?: string;
}

/**
 * nsh.conf lines appended to the lab's own (a later line wins): the Slurm lab is started for the
 * REST backend, the PBS lab for libpbs, and these switch one lab between its backends.
 */
export function confOverrides(b: SchedBackend, c: ConfContext): string {
  const need = <K extends keyof ConfContext>(k: K): NonNullable<ConfContext[K]> => {
    if (c[k] === undefined || c[k] === "") throw new Error(`${b}: ${k} is needed for its nsh.conf`);
    return c[k]!;
  };
  switch (b) {
    case "slurm":
      return `slurm-api-port = ${need("proxyPort")}`;
    case "slurm-cli":
      return ["job-scheduler = slurm-cli", `slurm-conf = ${need("slurmConf")}`, `slurm-bin-dir = ${need("binDir")}`]
        .join("\n");
    case "slurm-native":
      return ["job-scheduler = slurm-native", `slurm-conf = ${need("slurmConf")}`].join("\n");
    case "pbs":
      return "job-scheduler = pbs";
    case "pbs-cli":
      return ["job-scheduler = pbs-cli", `pbs-cli-user = ${need("pbsUser")}`, `pbs-bin-dir = ${need("binDir")}`].join("\n");
  }
}

/**
 * An nsh.conf with `overrides` in place of the lab's own lines for the same settings (nsh warns when
 * a setting is given twice, and that warning would reach every nix-build's output).
 */
export function withOverrides(base: string, overrides: string): string {
  const keyOf = (line: string): string | undefined => /^\s*([\w-]+)\s*=/.exec(line)?.[1];
  const lines = overrides.split("\n").filter((l) => l.trim() !== "");
  const keys = new Set(lines.map(keyOf).filter((k): k is string => k !== undefined));
  const kept = base.split("\n").filter((l) => !keys.has(keyOf(l) ?? ""));
  while (kept.length > 0 && kept.at(-1)!.trim() === "") kept.pop();
  return `${[...kept, ...lines].join("\n")}\n`;
}

const shQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** A tool wrapper: one line per invocation ("<tool> <args>") appended to `log`, then the real tool. */
export function toolWrapper(tool: string, real: string, log: string): string {
  return `#!/bin/sh\necho "${tool} $*" >> ${shQuote(log)}\nexec ${shQuote(real)} "$@"\n`;
}

/**
 * The build hook Nix runs: nsh with NSH_FFI_TRACE=1 and its stderr also copied to a file of its own
 * (`<logDir>/hook-<pid>.log`). Nix drops a hook's plain stderr lines once it accepted a build, so
 * the trace is read from those files. Every backend runs through the same wrapper, so all pay for it.
 */
export function hookWrapper(nsh: string, logDir: string): string {
  return [
    "#!/bin/bash",
    "export NSH_FFI_TRACE=1",
    `exec ${shQuote(nsh)} "$@" 2> >(exec tee -a ${shQuote(logDir)}/hook-$$.log >&2)`,
    "",
  ].join("\n");
}

export type CallKind = "submit" | "status" | "cancel" | "other";
export type CallCounts = Record<CallKind, number>;
export const noCalls = (): CallCounts => ({ submit: 0, status: 0, cancel: 0, other: 0 });

/** A request to slurmrestd: submit, a job's or all jobs' state, a cancel; pings and the OpenAPI document are other. */
export function classifyRest(method: string, path: string): CallKind {
  const p = path.replace(/\?.*$/, "");
  if (method === "POST" && /\/job\/submit$/.test(p)) return "submit";
  if (method === "DELETE" && /\/job\/[^/]+$/.test(p)) return "cancel";
  if (method === "GET" && (/\/jobs$/.test(p) || /\/job\/[^/]+$/.test(p))) return "status";
  return "other";
}

/** A line of a tool wrapper's log: `sbatch --version` and `qstat -B` (the server) are other. */
export function classifyCliLine(line: string): CallKind | undefined {
  const [tool, ...args] = line.trim().split(/\s+/);
  switch (tool) {
    case "sbatch":
      return args.includes("--version") ? "other" : "submit";
    case "qsub":
      return "submit";
    case "squeue":
    case "sacct":
      return "status";
    case "qstat":
      return args.includes("-B") ? "other" : "status";
    case "scancel":
    case "qdel":
      return "cancel";
    default:
      return undefined;
  }
}

const FFI_KIND: Record<string, CallKind> = {
  nsh_shim_submit: "submit",
  nsh_shim_jobs: "status",
  nsh_shim_cancel: "cancel",
  nsh_shim_ping: "other",
  nsh_shim_init: "other",
  pbs_submit: "submit",
  pbs_statjob: "status",
  pbs_deljob: "cancel",
  pbs_deljoblist: "cancel",
  pbs_connect: "other",
  pbs_statserver: "other",
};

/**
 * An NSH_FFI_TRACE line ("nsh ffi: slurm-shim nsh_shim_submit(…) -> 42 (3.1 ms)"): the calls that
 * reach the controller or the server. Local helpers (strerror, statfree, the ABI and version
 * queries, disconnect) are not counted.
 */
export function classifyFfiLine(line: string): CallKind | undefined {
  const m = /^nsh ffi: (?:slurm-shim|libpbs) (\w+)\(/.exec(line.trim());
  return m ? FFI_KIND[m[1]!] : undefined;
}

export function countCalls(kinds: Iterable<CallKind | undefined>): CallCounts {
  const c = noCalls();
  for (const k of kinds) if (k) c[k]++;
  return c;
}

export const addCalls = (a: CallCounts, b: CallCounts): CallCounts =>
  ({ submit: a.submit + b.submit, status: a.status + b.status, cancel: a.cancel + b.cancel, other: a.other + b.other });

export const fmtCalls = (c: CallCounts): string => `${c.submit} / ${c.status} / ${c.cancel} / ${c.other}`;

/** The part of nsh's job record this benchmark reads (`nsh jobs --all --json`). */
export interface RecordLite {
  drv: string;
  scheduler?: string;
  jobId?: string;
  state: string;
  submittedAt: number;
  marks?: Record<string, number>;
}

/** `nsh jobs --all --json` output (one JSON object per line) → records; bad lines are skipped. */
export function parseJobLines(text: string): RecordLite[] {
  const out: RecordLite[] = [];
  for (const l of text.split("\n")) {
    if (!l.trim()) continue;
    try {
      out.push(JSON.parse(l) as RecordLite);
    } catch {}
  }
  return out;
}

/** The records of one run: its derivations all end in `-<salt>.drv`. */
export const recordsOfRun = (records: readonly RecordLite[], salt: string): RecordLite[] =>
  records.filter((r) => r.drv.endsWith(`-${salt}.drv`));

/** ms from the submit call's return to nsh seeing the job run, per job that got that far. */
export function submitToRunning(records: readonly RecordLite[]): number[] {
  const out: number[] = [];
  for (const r of records) {
    const s = r.marks?.submitted;
    const run = r.marks?.running;
    if (s !== undefined && run !== undefined) out.push(run - s);
  }
  return out;
}

/** slurmctld's log (ms time stamps): per job id, when its submit RPC came and when it was allocated. */
export function parseSlurmctldLog(text: string): { submitAt: Map<string, number>; allocAt: Map<string, number> } {
  const submitAt = new Map<string, number>();
  const allocAt = new Map<string, number>();
  for (const l of text.split("\n")) {
    const m = /^\[(\d{4}-\d\d-\d\dT[\d:.]+)\] (.*)$/.exec(l);
    if (!m) continue;
    const t = new Date(m[1]!).getTime();
    const sub = /_slurm_rpc_submit_batch_job: JobId=(\d+)/.exec(m[2]!);
    if (sub) submitAt.set(sub[1]!, t);
    const alloc = /(?:Allocate|Started) JobId=(\d+)/.exec(m[2]!);
    if (alloc && !allocAt.has(alloc[1]!)) allocAt.set(alloc[1]!, t);
  }
  return { submitAt, allocAt };
}
