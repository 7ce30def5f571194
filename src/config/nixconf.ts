// nix.conf syntax, as Nix reads it (libutil/config.cc applyConfig in Nix 2.8,
// parseConfigFiles in later Nix, applyConfigInner in Lix), and the list of
// files Nix reads (libstore/globals.cc loadConfFile, getUserConfigFiles).
// Everything here is pure except loadNixConf, which reads the files.
// Also used for nsh.conf, which shares the syntax.

import { fileExists as existsSync, readTextFile } from "../sys/file.ts";
import * as posix from "../sys/posix-path.ts";

export interface NixConfSetting {
  value: string;
  /** Where the value was last set or appended to. */
  file: string;
  line: number;
  /**
   * Only `extra-NAME` lines were seen: Nix appends their value to NAME's
   * built-in default, which this generic parser does not know.
   */
  appendToDefault?: boolean;
}

export interface ConfError {
  file: string;
  /** 1-based; 0 when the problem concerns the whole file. */
  line: number;
  /** Complete message, starting with `file:line: `. */
  message: string;
}

export interface NixConf {
  settings: Map<string, NixConfSetting>;
  warnings: string[];
  errors: ConfError[];
}

/** Returns a file's contents, or undefined if it does not exist (or cannot be read). */
export type ReadInclude = (path: string) => string | undefined;

export interface ParseNixConfOptions {
  /** Settings from files read earlier: later lines override them and `extra-` appends to them. */
  into?: Map<string, NixConfSetting>;
  /** Expand `include ~/x` against this directory, as Lix does for user config files. */
  home?: string;
}

export type Env = Record<string, string | undefined>;

const EXTRA = "extra-";
/** Nix splits config lines on these (tokenizeString's default separators). */
const WHITESPACE = /[ \t\n\r]+/;
/** Nix has no cycle check and would recurse until it crashes; we stop. */
const MAX_INCLUDE_DEPTH = 32;

function confError(file: string, line: number, what: string): ConfError {
  return { file, line, message: line > 0 ? `${file}:${line}: ${what}` : `${file}: ${what}` };
}

function tokens(s: string): string[] {
  // Lines with spaces only split on " ": a regex split and filter cost the hook ~0.2 ms of CPU on
  // their first use in a process, when it reads nsh.conf before its first answer (bench/startup.ts).
  const parts = s.includes("\t") || s.includes("\r") || s.includes("\n") ? s.split(WHITESPACE) : s.split(" ");
  const out: string[] = [];
  for (const t of parts) if (t !== "") out.push(t);
  return out;
}

/** Appends like Nix's list settings: joined by one space, empty parts dropped. */
function appendValue(a: string, b: string): string {
  return a === "" ? b : b === "" ? a : `${a} ${b}`;
}

interface ParseState extends NixConf {
  readInclude: ReadInclude;
  home: string | undefined;
  /** Files being parsed, outermost first, to detect include cycles. */
  stack: string[];
}

function parseInto(st: ParseState, text: string, file: string): void {
  // Lix warns when a file sets a key twice; the later value still wins.
  const seen = new Map<string, number>();
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const raw = lines[i] ?? "";
    const hash = raw.indexOf("#");
    const line = hash === -1 ? raw : raw.slice(0, hash);
    const toks = tokens(line);
    if (toks.length === 0) continue;
    const [first, second] = toks;
    const err = (what: string) => st.errors.push(confError(file, lineNo, what));

    if (first === "include" || first === "!include") {
      if (toks.length !== 2 || second === undefined) {
        err(`'${first}' takes exactly one path, got '${line.trim()}'`);
        continue;
      }
      includeFile(st, second, first === "!include", file, lineNo);
      continue;
    }
    if (second !== "=") {
      const hint = first !== "=" && first?.includes("=") ? " (Nix needs whitespace around '=')" : "";
      err(`expected 'name = value', 'include path' or '!include path', got '${line.trim()}'${hint}`);
      continue;
    }
    const name = first ?? "";
    const value = toks.slice(2).join(" ");
    const isExtra = name.startsWith(EXTRA);
    const target = isExtra ? name.slice(EXTRA.length) : name;
    if (target === "") {
      err(`'${name}' names no setting`);
      continue;
    }
    if (isExtra) {
      const prev = st.settings.get(target);
      st.settings.set(target, {
        value: prev === undefined ? value : appendValue(prev.value, value),
        file,
        line: lineNo,
        ...(prev === undefined || prev.appendToDefault === true ? { appendToDefault: true } : {}),
      });
      continue;
    }
    const again = seen.get(name);
    if (again !== undefined) {
      st.warnings.push(`${file}:${lineNo}: '${name}' is set again; the value from line ${again} is discarded`);
    }
    seen.set(name, lineNo);
    st.settings.set(name, { value, file, line: lineNo });
  }
}

function includeFile(st: ParseState, target: string, optional: boolean, file: string, line: number): void {
  const err = (what: string) => st.errors.push(confError(file, line, what));
  let path = target;
  if (st.home !== undefined && path.startsWith("~/")) path = `${st.home}/${path.slice(2)}`;
  if (!path.startsWith("/")) {
    // Nix resolves against the including file's directory; NIX_CONFIG has none.
    if (!file.startsWith("/")) {
      err(`cannot include relative path '${target}' from ${file}, which is not a file`);
      return;
    }
    path = posix.join(posix.dirname(file), path);
  }
  path = posix.normalize(path);
  if (st.stack.includes(path) || st.stack.length >= MAX_INCLUDE_DEPTH) {
    err(`include of '${path}' loops (${[...st.stack, path].join(" -> ")})`);
    return;
  }
  const text = st.readInclude(path);
  if (text === undefined) {
    if (!optional) err(`file '${path}' included from '${file}' not found`);
    return;
  }
  st.stack.push(path);
  parseInto(st, text, path);
  st.stack.pop();
}

/**
 * Parse one config file (and what it includes) with Nix's rules: `#` starts a
 * comment anywhere; a line is `name = value` with `=` a separate token and the
 * value's tokens re-joined by single spaces; `include p` (error if missing) and
 * `!include p` (skipped if missing) resolve relative to the including file;
 * `extra-NAME = v` appends to NAME; later lines win. Bad lines become errors and
 * parsing goes on (Nix stops at the first one).
 */
export function parseNixConf(
  text: string,
  file: string,
  readInclude: ReadInclude,
  options: ParseNixConfOptions = {},
): NixConf {
  const st: ParseState = {
    settings: new Map(options.into ?? []),
    warnings: [],
    errors: [],
    readInclude,
    home: options.home,
    stack: file.startsWith("/") ? [posix.normalize(file)] : [],
  };
  parseInto(st, text, file);
  return { settings: st.settings, warnings: st.warnings, errors: st.errors };
}

/** `$NIX_CONF_DIR` (empty counts as unset, as in Nix 2.20+), else the usual /etc/nix. */
export function nixConfDir(env: Env): string {
  const dir = env["NIX_CONF_DIR"];
  return dir === undefined || dir === "" ? "/etc/nix" : dir;
}

function splitPathList(s: string): string[] {
  return s.split(":").filter((p) => p !== "");
}

/** The user config files in Nix's priority order, highest first (getUserConfigFiles). */
function userConfFiles(env: Env, nixConfigHome: boolean): string[] {
  const explicit = env["NIX_USER_CONF_FILES"];
  if (explicit !== undefined) return splitPathList(explicit);
  // Nix 2.25+ lets NIX_CONFIG_HOME replace "$XDG_CONFIG_HOME/nix".
  const nixHome = nixConfigHome ? env["NIX_CONFIG_HOME"] : undefined;
  const xdgHome = env["XDG_CONFIG_HOME"];
  const home = env["HOME"];
  let userDir: string | undefined;
  if (nixHome !== undefined) userDir = nixHome;
  // Like Nix, a set-but-empty XDG_CONFIG_HOME is used as is (giving "/nix/nix.conf").
  else if (xdgHome !== undefined) userDir = `${xdgHome}/nix`;
  else if (home !== undefined) userDir = `${home}/.config/nix`;
  const dirs = splitPathList(env["XDG_CONFIG_DIRS"] ?? "/etc/xdg").map((d) => `${d}/nix`);
  return [...(userDir === undefined ? [] : [userDir]), ...dirs].map((d) => `${d}/nix.conf`);
}

interface ConfSource {
  path: string;
  user: boolean;
}

function confSources(env: Env, exists: (p: string) => boolean, nixConfigHome: boolean): ConfSource[] {
  const system: ConfSource = { path: `${nixConfDir(env)}/nix.conf`, user: false };
  // Nix applies the user files lowest priority first, so the first listed wins.
  const user = userConfFiles(env, nixConfigHome)
    .reverse()
    .map((path) => ({ path, user: true }));
  return [system, ...user].filter((s) => exists(s.path));
}

export interface ResolveOptions {
  /** Honour NIX_CONFIG_HOME (Nix 2.25 and later; ignored by older Nix and Lix). Default true. */
  nixConfigHome?: boolean;
}

/**
 * The existing nix.conf files Nix reads, in the order it applies them (later
 * ones override earlier ones): `$NIX_CONF_DIR/nix.conf`, then the user files
 * from last to first, where the user files are `$NIX_USER_CONF_FILES` if set,
 * else `$XDG_CONFIG_HOME/nix/nix.conf` (default `$HOME/.config/nix/nix.conf`)
 * followed by each `$XDG_CONFIG_DIRS` entry's `nix/nix.conf` (default
 * `/etc/xdg`). `$NIX_CONFIG` is applied after all of them (see loadNixConf).
 */
export function resolveNixConfFiles(env: Env, exists: (p: string) => boolean, options: ResolveOptions = {}): string[] {
  return confSources(env, exists, options.nixConfigHome ?? true).map((s) => s.path);
}

export interface LoadedNixConf extends NixConf {
  /** The files read, in order (not counting includes). */
  files: string[];
}

/** Read and merge the nix.conf files Nix would read, then `$NIX_CONFIG`. Does file I/O. */
export function loadNixConf(env: Env = process.env, options: ResolveOptions = {}): LoadedNixConf {
  let settings = new Map<string, NixConfSetting>();
  const warnings: string[] = [];
  const errors: ConfError[] = [];
  const read = (path: string): string | undefined => {
    if (!existsSync(path)) return undefined;
    try {
      return readTextFile(path);
    } catch (e) {
      // Nix silently skips files it cannot read; we at least say so.
      warnings.push(`${path}: cannot read: ${(e as Error).message}`);
      return "";
    }
  };
  const apply = (text: string, file: string, home: string | undefined) => {
    const r = parseNixConf(text, file, read, { into: settings, ...(home === undefined ? {} : { home }) });
    settings = r.settings;
    warnings.push(...r.warnings);
    errors.push(...r.errors);
  };
  const sources = confSources(env, existsSync, options.nixConfigHome ?? true);
  for (const s of sources) {
    // Lix expands "~/" in includes of user files only.
    apply(read(s.path) ?? "", s.path, s.user ? env["HOME"] : undefined);
  }
  const fromEnv = env["NIX_CONFIG"];
  if (fromEnv !== undefined) apply(fromEnv, "NIX_CONFIG", undefined);
  return { settings, warnings, errors, files: sources.map((s) => s.path) };
}

export type SettingResult<T> = { ok: true; value: T } | { ok: false; error: ConfError };

function bad(file: string, line: number, name: string | undefined, what: string, value: string): { ok: false; error: ConfError } {
  const subject = name === undefined ? "expected" : `'${name}' expects`;
  return { ok: false, error: confError(file, line, `${subject} ${what}, got '${value}'`) };
}

/** Nix's Boolean spellings, case-sensitive: true/yes/1 and false/no/0. */
export function settingBool(value: string, file: string, line: number, name?: string): SettingResult<boolean> {
  if (value === "true" || value === "yes" || value === "1") return { ok: true, value: true };
  if (value === "false" || value === "no" || value === "0") return { ok: true, value: false };
  return bad(file, line, name, "a Boolean (true/false, yes/no, 1/0)", value);
}

export interface IntRange {
  min?: number;
  max?: number;
}

/** A decimal integer (optional sign), within `range` (default: JS safe integers). */
export function settingInt(
  value: string,
  file: string,
  line: number,
  name?: string,
  range: IntRange = {},
): SettingResult<number> {
  const min = range.min ?? Number.MIN_SAFE_INTEGER;
  const max = range.max ?? Number.MAX_SAFE_INTEGER;
  const n = /^[+-]?[0-9]+$/.test(value) ? Number(value) : Number.NaN;
  if (Number.isNaN(n)) return bad(file, line, name, "an integer", value);
  if (n < min || n > max) return bad(file, line, name, `an integer from ${min} to ${max}`, value);
  return { ok: true, value: n };
}

/** Whitespace-separated words, as Nix's list and set settings split them. */
export function settingList(value: string, _file: string, _line: number, _name?: string): SettingResult<string[]> {
  return { ok: true, value: tokens(value) };
}
