// The part of OpenSSH's client configuration (ssh_config(5)) that nsh honours, so `nsh` reaches a
// host exactly as `ssh host` would: Host blocks, HostName, User, Port, IdentityFile, known hosts
// files, StrictHostKeyChecking, timeouts and keepalives, Include. Parsing and resolving are pure;
// loadSshConfig is the one function that reads files.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { type Destination, parseDestination } from "./destination.ts";

export class SshConfigError extends Error {
  override name = "SshConfigError";
}

/** Who runs nsh: home directory and user name for `~` and the %d/%u tokens and the default User. */
export interface LocalContext {
  home: string;
  user: string;
  uid: number;
  env: Record<string, string | undefined>;
}

/** A Host/Match block's condition; an option applies when all conditions around it match. */
export type Condition = { kind: "host"; patterns: string[] } | { kind: "all" } | { kind: "never" };

export interface SshConfigOption {
  /** Lower-case keyword. */
  key: string;
  args: string[];
  file: string;
  line: number;
  /** The enclosing Host/Match blocks (more than one through a conditional Include). */
  when: Condition[];
}

export interface SshConfig {
  options: SshConfigOption[];
  /** Things nsh did not honour (unsupported Match criteria), for a debug log. */
  warnings: string[];
  local: LocalContext;
}

export interface ParseOptions {
  file?: string;
  local?: Partial<LocalContext>;
  /** Where relative Include paths point: ~/.ssh for user files, /etc/ssh for the system file. */
  includeDir?: string;
  /** Files an Include pattern (absolute, may hold globs) names, in lexical order. */
  readInclude?: (pattern: string) => { file: string; text: string }[];
}

export type StrictHostKeyChecking = "yes" | "no" | "accept-new";

export interface ResolvedHost {
  /** The host as given (the name Host patterns match). */
  alias: string;
  /** The address to connect to (HostName, lower-cased like OpenSSH). */
  hostname: string;
  port: number;
  user: string;
  identityFiles: string[];
  /** User files first (accept-new appends to the first), then global ones. */
  knownHostsFiles: string[];
  userKnownHostsFiles: string[];
  /** The name looked up in known_hosts instead of hostname[:port]. */
  hostKeyAlias?: string;
  strictHostKeyChecking: StrictHostKeyChecking;
  identitiesOnly: boolean;
  /** Agent socket from IdentityAgent: a path, or "none"; undefined means SSH_AUTH_SOCK. */
  identityAgent?: string;
  connectTimeoutMs: number;
  /** Where connectTimeoutMs comes from, for messages: the ssh config's line, nsh.conf, or nsh's default. */
  connectTimeoutFrom: string;
  keepaliveIntervalMs: number;
  keepaliveCountMax: number;
}

// OpenSSH waits for the OS TCP timeout (minutes) and never probes a silent peer by default; a build
// hook must notice a dead host, so nsh has defaults where OpenSSH has none.
export const DEFAULT_CONNECT_TIMEOUT_MS = 20_000;
export const DEFAULT_KEEPALIVE_INTERVAL_MS = 15_000;
export const DEFAULT_KEEPALIVE_COUNT_MAX = 3;
const DEFAULT_IDENTITIES = ["~/.ssh/id_ed25519", "~/.ssh/id_ecdsa", "~/.ssh/id_rsa"];
const DEFAULT_USER_KNOWN_HOSTS = ["~/.ssh/known_hosts", "~/.ssh/known_hosts2"];
const DEFAULT_GLOBAL_KNOWN_HOSTS = ["/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"];
const MAX_INCLUDE_DEPTH = 16; // OpenSSH's limit too

export function localContext(over: Partial<LocalContext> = {}): LocalContext {
  const env = over.env ?? process.env;
  const uid = over.uid ?? (typeof process.getuid === "function" ? process.getuid() : -1);
  const user = over.user ?? env.USER ?? env.LOGNAME ?? (uid === 0 ? "root" : os.userInfo().username);
  return { home: over.home ?? env.HOME ?? os.homedir(), user, uid, env };
}

/** Splits a line into words: whitespace-separated, double quotes group, `#` starts a comment. */
function splitWords(line: string, where: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < line.length) {
    while (i < line.length && /\s/.test(line[i]!)) i++;
    if (i >= line.length || line[i] === "#") break;
    let word = "";
    if (line[i] === '"') {
      const end = line.indexOf('"', i + 1);
      if (end < 0) throw new SshConfigError(`${where}: unterminated quote`);
      word = line.slice(i + 1, end);
      i = end + 1;
    } else {
      while (i < line.length && !/\s/.test(line[i]!)) word += line[i++];
    }
    words.push(word);
  }
  return words;
}

/** Glob match of a whole string: `*` any run, `?` one character. */
export function matchPattern(pattern: string, text: string): boolean {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${re}$`, "s").test(text);
}

/** Host line semantics: a matching negated pattern vetoes the line; otherwise any positive match. */
export function matchHostPatterns(patterns: readonly string[], host: string): boolean {
  let positive = false;
  for (const p of patterns) {
    if (p.startsWith("!")) {
      if (matchPattern(p.slice(1), host)) return false;
    } else if (matchPattern(p, host)) positive = true;
  }
  return positive;
}

const NEEDS_ARG = new Set([
  "hostname", "user", "port", "identityfile", "userknownhostsfile", "globalknownhostsfile", "hostkeyalias",
  "stricthostkeychecking", "connecttimeout", "serveraliveinterval", "serveralivecountmax", "identitiesonly",
  "identityagent", "include",
]);

function validate(key: string, args: string[], where: string): void {
  const v = args[0]!;
  const bad = (what: string): never => {
    throw new SshConfigError(`${where}: bad ${what} value ${JSON.stringify(v)}`);
  };
  const int = (min: number, max: number) => /^[0-9]+$/.test(v) && Number(v) >= min && Number(v) <= max;
  if (key === "port" && !int(1, 65535)) bad("Port");
  if (key === "connecttimeout" && v !== "none" && !int(0, 1e6)) bad("ConnectTimeout");
  if (key === "serveraliveinterval" && !int(0, 1e6)) bad("ServerAliveInterval");
  if (key === "serveralivecountmax" && !int(0, 1e6)) bad("ServerAliveCountMax");
  if (key === "stricthostkeychecking" && !["yes", "no", "off", "ask", "accept-new"].includes(v.toLowerCase())) {
    bad("StrictHostKeyChecking");
  }
  if (key === "identitiesonly" && !["yes", "no"].includes(v.toLowerCase())) bad("IdentitiesOnly");
}

export function expandTilde(p: string, home: string, where = "path"): string {
  if (p === "~") return home;
  if (p.startsWith("~/")) return path.join(home, p.slice(2));
  if (p.startsWith("~")) throw new SshConfigError(`${where}: ~user paths are not supported (${p})`);
  return p;
}

export function parseSshConfig(text: string, opts: ParseOptions = {}): SshConfig {
  const local = localContext(opts.local);
  const config: SshConfig = { options: [], warnings: [], local };
  const includeDir = opts.includeDir ?? path.join(local.home, ".ssh");
  parseInto(config, text, opts.file ?? "ssh_config", [], 0, includeDir, opts.readInclude);
  return config;
}

function parseInto(
  config: SshConfig,
  text: string,
  file: string,
  outer: Condition[],
  depth: number,
  includeDir: string,
  readInclude: ParseOptions["readInclude"],
): void {
  // Options before the first Host/Match line apply to every host (within the outer conditions).
  let when = outer;
  text.split(/\r?\n/).forEach((raw, idx) => {
    const line = idx + 1;
    const where = `${file}:${line}`;
    // "Key=value" and "Key = value" are both allowed: exactly one '=' may separate key and value.
    const m = /^\s*([A-Za-z][A-Za-z0-9]*)\s*(?:=\s*|\s+|$)(.*)$/.exec(raw);
    if (!m) {
      if (raw.trim() !== "" && !raw.trim().startsWith("#")) {
        throw new SshConfigError(`${where}: cannot parse ${JSON.stringify(raw.trim())}`);
      }
      return;
    }
    const key = m[1]!.toLowerCase();
    const args = splitWords(m[2]!, where);
    if (key === "host") {
      if (args.length === 0) throw new SshConfigError(`${where}: Host needs at least one pattern`);
      when = [...outer, { kind: "host", patterns: args }];
    } else if (key === "match") {
      if (args.length === 1 && args[0]!.toLowerCase() === "all") when = [...outer, { kind: "all" }];
      else {
        config.warnings.push(`${where}: Match ${args.join(" ")} is not supported by nsh; its block is ignored`);
        when = [...outer, { kind: "never" }];
      }
    } else if (NEEDS_ARG.has(key) && args.length === 0) {
      throw new SshConfigError(`${where}: ${m[1]} needs a value`);
    } else if (key === "include") {
      if (depth >= MAX_INCLUDE_DEPTH) throw new SshConfigError(`${where}: Include nested too deeply`);
      for (const arg of args) {
        const p = expandTilde(arg, config.local.home, where);
        const abs = path.isAbsolute(p) ? p : path.join(includeDir, p);
        for (const inc of readInclude?.(abs) ?? []) {
          parseInto(config, inc.text, inc.file, when, depth + 1, includeDir, readInclude);
        }
      }
    } else if (NEEDS_ARG.has(key)) {
      validate(key, args, where);
      config.options.push({ key, args, file, line, when });
    }
    // Other keywords (BatchMode, ControlMaster, ...) do not change how nsh connects: ignored.
  });
}

function conditionHolds(c: Condition, alias: string): boolean {
  if (c.kind === "all") return true;
  if (c.kind === "never") return false;
  return matchHostPatterns(c.patterns, alias);
}

/** Expands %-tokens and ${VAR}; unknown tokens are errors, as in OpenSSH. */
export function expandTokens(
  value: string,
  tokens: Record<string, string>,
  env: Record<string, string | undefined>,
  where: string,
): string {
  const withEnv = value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
    const v = env[name];
    if (v === undefined) throw new SshConfigError(`${where}: environment variable ${name} is not set (in ${value})`);
    return v;
  });
  return withEnv.replace(/%(.)?/g, (_, t: string | undefined) => {
    if (t === "%") return "%";
    const v = t === undefined ? undefined : tokens[t];
    if (v === undefined) {
      throw new SshConfigError(`${where}: unsupported token %${t ?? ""} in ${JSON.stringify(value)}`);
    }
    return v;
  });
}

/** What applies where the ssh config says nothing (nsh.conf's ssh-connect-timeout). */
export interface HostDefaults {
  connectTimeoutMs: number;
  connectTimeoutFrom: string;
}

/**
 * The host's settings. A ConnectTimeout in the ssh config (for this host, or `Host *`) wins over
 * `defaults`: it is what `ssh host` would use, and the OpenSSH bulk session reads the same file.
 */
export function resolveHost(
  config: SshConfig,
  destination: Destination | string,
  defaults?: HostDefaults,
): ResolvedHost {
  const dest = typeof destination === "string" ? parseDestination(destination) : destination;
  const alias = dest.host;
  const first = new Map<string, SshConfigOption>();
  const identityOpts: SshConfigOption[] = [];
  for (const opt of config.options) {
    if (!opt.when.every((c) => conditionHolds(c, alias))) continue;
    // IdentityFile accumulates; every other keyword keeps its first obtained value.
    if (opt.key === "identityfile") identityOpts.push(opt);
    else if (!first.has(opt.key)) first.set(opt.key, opt);
  }
  const get = (k: string) => first.get(k)?.args[0];
  const where = (k: string) => {
    const o = first.get(k);
    return o ? `${o.file}:${o.line}` : k;
  };
  const { local } = config;
  const hostnameOpt = get("hostname");
  const hostname = (
    hostnameOpt === undefined ? alias : expandTokens(hostnameOpt, { h: alias }, {}, where("hostname"))
  ).toLowerCase();
  const user = dest.user ?? get("user") ?? local.user;
  const port = dest.port ?? Number(get("port") ?? 22);
  const hostKeyAlias = get("hostkeyalias");
  const tokens: Record<string, string> = {
    d: local.home, u: local.user, i: String(local.uid), h: hostname,
    r: user, p: String(port), n: alias, k: hostKeyAlias ?? alias,
  };
  const file = (p: string, w: string) => expandTilde(expandTokens(p, tokens, local.env, w), local.home, w);
  const fileList = (k: string, defaults: string[]): string[] => {
    const o = first.get(k);
    if (!o) return defaults.map((p) => file(p, k));
    if (o.args.length === 1 && o.args[0]!.toLowerCase() === "none") return [];
    return o.args.map((p) => file(p, `${o.file}:${o.line}`));
  };
  const identityFiles = identityOpts.length > 0
    ? identityOpts.map((o) => file(o.args[0]!, `${o.file}:${o.line}`))
    : DEFAULT_IDENTITIES.map((p) => file(p, "IdentityFile"));
  const userKnownHostsFiles = fileList("userknownhostsfile", DEFAULT_USER_KNOWN_HOSTS);
  const globalFiles = fileList("globalknownhostsfile", DEFAULT_GLOBAL_KNOWN_HOSTS);
  const strict = (get("stricthostkeychecking") ?? "yes").toLowerCase();
  const connect = get("connecttimeout");
  const interval = get("serveraliveinterval");
  const agent = get("identityagent");
  return {
    alias,
    hostname,
    port,
    user,
    identityFiles: [...new Set(identityFiles)],
    knownHostsFiles: [...userKnownHostsFiles, ...globalFiles],
    userKnownHostsFiles,
    hostKeyAlias,
    // "ask" cannot prompt in a build hook: it refuses unknown hosts like "yes".
    strictHostKeyChecking: strict === "no" || strict === "off" ? "no" : strict === "accept-new" ? "accept-new" : "yes",
    identitiesOnly: get("identitiesonly")?.toLowerCase() === "yes",
    identityAgent: agent === undefined
      ? undefined
      : agent.toLowerCase() === "none" ? "none" : resolveAgent(agent, tokens, local, where("identityagent")),
    ...(connect === undefined || connect === "none" || connect === "0"
      ? defaults ?? { connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS, connectTimeoutFrom: "nsh's default" }
      : {
        connectTimeoutMs: Number(connect) * 1000,
        connectTimeoutFrom: `ConnectTimeout at ${where("connecttimeout")}`,
      }),
    keepaliveIntervalMs: interval === undefined ? DEFAULT_KEEPALIVE_INTERVAL_MS : Number(interval) * 1000,
    keepaliveCountMax: Number(get("serveralivecountmax") ?? DEFAULT_KEEPALIVE_COUNT_MAX),
  };
}

function resolveAgent(value: string, tokens: Record<string, string>, local: LocalContext, where: string): string {
  if (value === "SSH_AUTH_SOCK") return local.env.SSH_AUTH_SOCK ?? "none";
  if (value.startsWith("$")) return local.env[value.slice(1).replace(/^\{|\}$/g, "")] ?? "none";
  return expandTilde(expandTokens(value, tokens, local.env, where), local.home, where);
}

/** Files matching an absolute path whose components may hold globs, in lexical order. */
function globFiles(pattern: string): string[] {
  let paths = ["/"];
  for (const part of pattern.split("/").filter((p) => p !== "")) {
    const next: string[] = [];
    for (const dir of paths) {
      if (!/[*?]/.test(part)) {
        next.push(path.join(dir, part));
        continue;
      }
      let names: string[] = [];
      try {
        names = fs.readdirSync(dir);
      } catch {}
      for (const n of names.sort()) {
        if ((part.startsWith(".") || !n.startsWith(".")) && matchPattern(part, n)) next.push(path.join(dir, n));
      }
    }
    paths = next;
  }
  return paths.filter((p) => {
    try {
      return fs.statSync(p).isFile();
    } catch {
      return false;
    }
  });
}

/**
 * Reads the configuration like `ssh` does: with `file` (ssh -F) only that file, otherwise
 * ~/.ssh/config then /etc/ssh/ssh_config; missing files are skipped.
 */
export function loadSshConfig(opts: { file?: string; local?: Partial<LocalContext> } = {}): SshConfig {
  const local = localContext(opts.local);
  const userDir = path.join(local.home, ".ssh");
  const sources = opts.file !== undefined
    ? [{ file: opts.file, includeDir: userDir, required: true }]
    : [
      { file: path.join(userDir, "config"), includeDir: userDir, required: false },
      { file: "/etc/ssh/ssh_config", includeDir: "/etc/ssh", required: false },
    ];
  const merged: SshConfig = { options: [], warnings: [], local };
  for (const src of sources) {
    let text: string;
    try {
      text = fs.readFileSync(src.file, "utf8");
    } catch (e) {
      if (src.required) throw new SshConfigError(`cannot read ssh config ${src.file}: ${(e as Error).message}`);
      continue;
    }
    const readInclude = (pattern: string) =>
      globFiles(pattern).map((f) => ({ file: f, text: fs.readFileSync(f, "utf8") }));
    const part = parseSshConfig(text, { file: src.file, local, includeDir: src.includeDir, readInclude });
    merged.options.push(...part.options);
    merged.warnings.push(...part.warnings);
  }
  return merged;
}
