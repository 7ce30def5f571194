// nsh.conf: nix.conf syntax, the settings of the original NSH (seed 004) plus nsh's own, each with
// its type and default. Pure: `parseNshConf` turns parsed settings into a typed config, collecting
// errors that name file and line; `loadNshConf` reads the files.
// No node:fs or node:path: the hook reads nsh.conf before its first answer (src/sys/file.ts).
import { fileExists as existsSync, readTextFile } from "../sys/file.ts";
import { join } from "../sys/posix-path.ts";
import { parseSizeText } from "../util/size.ts";
import { inlineSecretWarnings } from "./secret-mode.ts";
import { type ConfError, type Env, type NixConfSetting, nixConfDir, parseNixConf, settingBool, settingInt, settingList } from "./nixconf.ts";

type Kind = "string" | "bool" | "int" | "list" | "size" | "json-object" | { enum: readonly string[] };

interface Spec {
  kind: Kind;
  default: unknown;
  doc: string;
}

export const NSH_SETTINGS = {
  "job-scheduler": {
    kind: { enum: ["slurm", "slurm-native", "pbs", "slurm-cli", "pbs-cli"] }, default: "slurm",
    doc: "which scheduler runs the jobs",
  },
  system: { kind: "string", default: "x86_64-linux", doc: "the system type of the cluster" },
  "system-features": { kind: "list", default: ["nsh"], doc: "optional features the cluster supports" },
  "mandatory-system-features": {
    kind: "list", default: [],
    doc: "features a derivation must require to go to the cluster",
  },
  "store-dir": { kind: "string", default: "/nix/store", doc: "the logical remote store directory" },
  "remote-store": { kind: "string", default: "auto", doc: "the store URL on the remote machine" },
  "remote-nix-bin-dir": {
    kind: "string", default: "",
    doc: "Nix's bin directory on the remote machine (clusters without Nix)",
  },
  "collect-garbage": { kind: "bool", default: false, doc: "run nix-store --gc on the remote store after each job" },
  "fallback-build-hook": {
    kind: "string", default: "",
    doc:
      "hook for builds nsh declines, program and arguments (verbosity appended); empty: Nix's own " +
      "build-remote",
  },
  trusted: {
    kind: "list", default: [],
    doc:
      "pinned host keys: HOSTS KEYTYPE BASE64 triples (HOSTS comma-separated names or * ? patterns); " +
      "exclusive for the hosts they match",
  },
  "copy-budget": {
    kind: "size", default: 0,
    doc: "bytes in flight for all nsh copies on this machine (0: 1/8 of memory)",
  },
  "openssh-min-size": {
    kind: "size", default: 64 << 20,
    doc:
      "NARs this big or bigger (nsh copy, and a build's inputs and outputs to and from its job's node) go " +
      "through OpenSSH's ssh (C crypto, sendfile) when it is installed; 0: always ssh2",
  },
  "state-dir": { kind: "string", default: "", doc: "nsh's state directory on this machine" },
  "login-host": {
    kind: "string", default: "",
    doc:
      "ssh destination that sees slurm-state-dir before a job runs (default: slurm-api-host; localhost for " +
      "slurm-cli and slurm-native)",
  },
  "ssh-config": { kind: "string", default: "", doc: "ssh client config file to use instead of ~/.ssh/config" },
  "job-environment": {
    kind: "list", default: [],
    doc: "NAME=VALUE words added to every job's environment (e.g. NIX_CONF_DIR=/etc/nix)",
  },
  "ssh-connect-timeout": {
    kind: "int", default: 15,
    doc:
      "seconds to connect and authenticate over ssh, where the ssh config sets no ConnectTimeout (0: nsh's " +
      "default, 20)",
  },
  "start-notice-host": {
    kind: "string", default: "auto",
    doc:
      "the name or address jobs reach this machine by, to tell the waiting hook at once that they started " +
      "(one TCP connection from the job's node to a port the hook opens while it waits; the hook then asks " +
      "the scheduler instead of waiting for its next poll); auto: this machine's host name; off: poll only",
  },
  "ssh-relay-idle-time": {
    kind: "int", default: 60,
    doc:
      "seconds the machine's ssh relay stays without clients: hooks share its ssh connections for their " +
      "channels to a job's agent instead of each connecting (0: off, each hook connects)",
  },
  "slurm-state-dir": { kind: "string", default: "", doc: "where jobs keep their files on the cluster" },
  "slurm-api-host": { kind: "string", default: "localhost", doc: "slurmrestd host" },
  "slurm-api-port": { kind: "int", default: 6820, doc: "slurmrestd port" },
  "slurm-api-version": { kind: "string", default: "auto", doc: "REST API version (auto: ask the server)" },
  "slurm-api-scheme": {
    kind: { enum: ["http", "https"] }, default: "http",
    doc:
      "http, or https for slurmrestd behind TLS (the certificate is checked); the JWT crosses the network " +
      "in the clear over http",
  },
  "slurm-api-ca-file": {
    kind: "string", default: "",
    doc: "PEM file of the CA that signed slurmrestd's certificate (https; default: the system's CAs)",
  },
  "slurm-jwt-token": {
    kind: "string", default: "",
    doc: "JWT for slurmrestd (prefer slurm-jwt-token-file or SLURM_JWT)",
  },
  "slurm-jwt-token-file": { kind: "string", default: "", doc: "file holding the JWT" },
  "slurm-user": { kind: "string", default: "", doc: "user name for slurmrestd (default: the current user)" },
  "slurm-extra-submission-params": {
    kind: "json-object", default: {},
    doc: "JSON merged into the job of every submission",
  },
  "derivation-params-allow": {
    kind: "list", default: ["default"],
    doc:
      "keys a derivation's scheduler parameters (extraSlurmParams, …) may set: 'default' is the built-in " +
      "resource and placement list, '*' any key",
  },
  "max-queue-wait": {
    kind: "int", default: 0,
    doc: "seconds a job may wait in the queue before its build fails and the job is cancelled (0: no bound)",
  },
  "slurm-conf": {
    kind: "string", default: "",
    doc: "slurm.conf for slurm-native and slurm-cli (default: Slurm's own)",
  },
  "slurm-native-user": {
    kind: "string", default: "",
    doc: "user slurm-native's jobs run as (default: the user nsh runs as; only root may name another)",
  },
  "slurm-native-partition": {
    kind: "string", default: "",
    doc: "partition for slurm-native's jobs (default: Slurm's default partition)",
  },
  "slurm-native-include-dir": {
    kind: "string", default: "",
    doc: "directory holding slurm/slurm.h for slurm-native's shim (default: /usr/include, /usr/local/include)",
  },
  "slurm-native-lib-dir": {
    kind: "string", default: "",
    doc: "directory holding libslurm.so for slurm-native's shim (default: the linker's path)",
  },
  "slurm-native-cc": {
    kind: "string", default: "",
    doc: "C compiler for slurm-native's shim (default: cc, gcc or clang on PATH)",
  },
  "slurm-bin-dir": {
    kind: "string", default: "",
    doc: "slurm-cli: directory holding sbatch, squeue, sacct, scancel (default: found on PATH)",
  },
  "slurm-cli-user": {
    kind: "string", default: "",
    doc:
      "slurm-cli: user (name or uid) the Slurm tools run as, so jobs run as that user; default: nsh's own " +
      "user",
  },
  "pbs-host": { kind: "string", default: "", doc: "PBS server host (default: from pbs.conf)" },
  "pbs-port": { kind: "int", default: 15001, doc: "PBS server port" },
  "pbs-bin-dir": {
    kind: "string", default: "",
    doc: "pbs-cli: directory holding qsub, qstat, qdel (default: PBS_EXEC/bin from pbs.conf, else PATH)",
  },
  "pbs-cli-user": {
    kind: "string", default: "",
    doc: "pbs-cli: user (name or uid) the PBS tools run as, so jobs run as that user; default: nsh's own user",
  },
  "pbs-user": {
    kind: "string", default: "",
    doc:
      "pbs: user (name or uid) the IFL calls, and so the jobs, run as; needed when nsh runs as root (PBS " +
      "refuses root's jobs); default: nsh's own user",
  },
  "pbs-lib": {
    kind: "string", default: "",
    doc: "pbs: path of libpbs.so.0 (default: PBS_EXEC/lib/libpbs.so.0 from pbs.conf)",
  },
  "scheduler-rate": {
    kind: "string", default: "28 1.8",
    doc:
      "BURST PER-SECOND: scheduler requests of all nsh processes on this machine together, below Slurm's " +
      "own per-user rate limit (30, 2/s); submits get 55%, job-state queries and cancels 45%; off: no limit",
  },
  "hook-niceness": {
    kind: "int", default: 5,
    doc:
      "added to the hook's niceness once it has accepted a build (its copies and waits, and the processes it starts): " +
      "Nix starts the next build's hook only after this one answered, so the hooks still starting get the CPU " +
      "first on a busy machine (0: off)",
  },
  "max-queued-jobs": {
    kind: "int", default: 0,
    doc:
      "this machine's nsh jobs waiting in the scheduler's queue at most; at the cap the hook postpones new " +
      "builds (Nix asks again later) and a submit waits (0: no cap)",
  },
  "pilot-idle-time": {
    kind: "int", default: 0,
    doc:
      "seconds a build's job stays after its build, waiting to serve another build of the same shape " +
      "(partition, resources, time limit) instead of a new job; it leaves when idle this long (0: off, one " +
      "job per build)",
  },
  "pilot-max-jobs": {
    kind: "int", default: 0,
    doc:
      "with pilot-idle-time: pilot jobs of one shape at most on this machine; a build finding none idle at " +
      "the cap waits for one instead of submitting (0: no cap, a build submits when none is idle)",
  },
  "pilot-builds-per-job": {
    kind: "int", default: 1,
    doc:
      "with pilot-idle-time: builds one pilot job runs at once; the job asks for this many times one build's " +
      "CPUs (and memory) and runs as many agents, each an idle slot for a build of its shape (1: one at a time)",
  },
} as const satisfies Record<string, Spec>;

type Settings = typeof NSH_SETTINGS;
type ValueOf<K extends Kind> = K extends "bool" ? boolean
  : K extends "int" | "size" ? number
  : K extends "list" ? string[]
  : K extends "json-object" ? Record<string, unknown>
  : string;
export type NshConfig = { -readonly [K in keyof Settings]: ValueOf<Settings[K]["kind"]> };

export interface LoadedNshConfig {
  config: NshConfig;
  /** Where each explicitly set value came from ("file:line"). */
  origins: Map<string, string>;
  files: string[];
  warnings: string[];
  errors: ConfError[];
}


function convert(name: string, spec: Spec, s: NixConfSetting): { ok: true; value: unknown } | { ok: false; error: ConfError } {
  const { value, file, line } = s;
  const fail = (what: string) => ({ ok: false as const, error: { file, line, message: `${file}:${line}: '${name}' expects ${what}, got '${value}'` } });
  const k = spec.kind;
  if (k === "bool") return settingBool(value, file, line, name);
  if (k === "int") return settingInt(value, file, line, name, { min: 0 });
  if (k === "list") {
    const r = settingList(value, file, line, name);
    // `extra-NAME` without a NAME line appends to NAME's default, as in Nix.
    return r.ok && s.appendToDefault ? { ok: true, value: [...(spec.default as string[]), ...(r.value as string[])] } : r;
  }
  if (k === "size") {
    const n = parseSizeText(value);
    return n === undefined ? fail("a size such as 512M or 2G") : { ok: true, value: n };
  }
  if (k === "json-object") {
    try {
      const v = JSON.parse(value) as unknown;
      if (v && typeof v === "object" && !Array.isArray(v)) return { ok: true, value: v };
    } catch {}
    return fail("a JSON object");
  }
  if (typeof k === "object" && !k.enum.includes(value)) return fail(`one of ${k.enum.join(", ")}`);
  return { ok: true, value };
}

export function defaultNshConfig(): NshConfig {
  // A copy of the table, its values then replaced: the copy shares the table's shape, where adding 62 keys
  // to {} makes 62 more (heap blocks before the hook's first answer, bench/README.md "### startup").
  const out: Record<string, unknown> = { ...NSH_SETTINGS };
  // Defaults are flat (strings, numbers, Booleans, lists of strings, an empty object): a shallow copy
  // is a full one, and far cheaper than structuredClone for a hook that starts per build (bench/startup.ts).
  // One loop, no helper: a helper called once per setting (62) gets JIT-compiled on a thread of its own
  // before the hook's first answer (~0.3 ms of CPU).
  for (const k in NSH_SETTINGS) {
    const v: unknown = NSH_SETTINGS[k as keyof typeof NSH_SETTINGS].default;
    out[k] = Array.isArray(v) ? v.slice() : typeof v === "object" && v !== null ? Object.assign({}, v) : v;
  }
  return out as NshConfig;
}

/** Typed config from parsed settings; unknown keys are warned about, bad values are errors. */
export function parseNshConf(settings: Map<string, NixConfSetting>): Omit<LoadedNshConfig, "files"> {
  const config = defaultNshConfig() as Record<string, unknown>;
  const origins = new Map<string, string>();
  const warnings: string[] = [];
  const errors: ConfError[] = [];
  for (const [name, s] of settings) {
    const spec = (NSH_SETTINGS as Record<string, Spec>)[name];
    if (!spec) {
      warnings.push(`${s.file}:${s.line}: unknown setting '${name}' (ignored)`);
      continue;
    }
    const r = convert(name, spec, s);
    if (r.ok) {
      config[name] = r.value;
      origins.set(name, `${s.file}:${s.line}`);
    } else errors.push(r.error);
  }
  return { config: config as NshConfig, origins, warnings, errors };
}

/** `$NSH_CONF` alone if set; else `$NIX_CONF_DIR/nsh.conf` then the user's (`$XDG_CONFIG_HOME/nix/nsh.conf`). */
export function nshConfFiles(env: Env): string[] {
  if (env.NSH_CONF) return [env.NSH_CONF];
  const user = env.XDG_CONFIG_HOME || (env.HOME ? join(env.HOME, ".config") : undefined);
  return [join(nixConfDir(env), "nsh.conf"), ...(user ? [join(user, "nix", "nsh.conf")] : [])];
}

export function loadNshConf(env: Env = process.env): LoadedNshConfig {
  let settings = new Map<string, NixConfSetting>();
  const warnings: string[] = [];
  const errors: ConfError[] = [];
  const read = (p: string) => (existsSync(p) ? readTextFile(p) : undefined);
  const files: string[] = [];
  for (const f of nshConfFiles(env)) if (existsSync(f) || f === env.NSH_CONF) files.push(f);
  for (const f of files) {
    const text = read(f);
    if (text === undefined) {
      errors.push({ file: f, line: 0, message: `${f}: no such file (named by NSH_CONF)` });
      continue;
    }
    const r = parseNixConf(text, f, read, { into: settings });
    settings = r.settings;
    warnings.push(...r.warnings);
    errors.push(...r.errors);
  }
  const typed = parseNshConf(settings);
  typed.warnings.push(...inlineSecretWarnings(typed.origins, typed.config));
  // No object spread (a JS-implemented builtin: ~0.1 ms of CPU on its first use, before the hook's first answer).
  const { config, origins } = typed;
  return { config, origins, files, warnings: warnings.concat(typed.warnings), errors: errors.concat(typed.errors) };
}

/** `trusted` triples → host pattern → pinned keys ("ssh-ed25519 AAAA…"). */
export function pinnedKeys(trusted: string[]): { pins: Map<string, string[]>; error?: string } {
  const pins = new Map<string, string[]>();
  if (trusted.length % 3 !== 0) return { pins, error: `'trusted' expects HOSTS KEYTYPE BASE64 triples, got ${trusted.length} words` };
  for (let i = 0; i < trusted.length; i += 3) {
    for (const host of trusted[i]!.split(",")) pins.set(host, [...(pins.get(host) ?? []), `${trusted[i + 1]} ${trusted[i + 2]}`]);
  }
  return { pins };
}
