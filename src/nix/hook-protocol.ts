// The build hook protocol between Nix and a hook (nix-protocols.md section 1), as a pure codec.
import { DEFAULT_MAX_LIST, DEFAULT_MAX_STRING, WireReader, concat, encodeString, encodeStrings, encodeU64 } from "./wire.ts";

/** Settings as Nix sends them: name → textual value, in the order received. */
export type Settings = Map<string, string>;

export interface TryRequest {
  amWilling: boolean;
  system: string;
  drvPath: string;
  requiredFeatures: string[];
}

export interface AcceptedBuild {
  inputs: string[];
  wantedOutputs: string[];
}

export type HookReply = "accept" | "decline" | "decline-permanently" | "postpone";
const replies: ReadonlySet<string> = new Set(["accept", "decline", "decline-permanently", "postpone"]);

/** A loop, not `every`: a JS-implemented builtin costs ~0.1 ms of CPU on its first use (bench/startup.ts). */
const isZero = (bytes: Uint8Array) => {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
};

/**
 * Pure: the settings blob at the start of `bytes` when all of it is there and regular (markers 1
 * then 0, zero padding, strings under the reader's cap), with its length; "incomplete" when more
 * bytes are needed; "irregular" for anything else, which readSettings reads field by field to say
 * exactly what is wrong.
 * `only`: keep that one setting (still checking the whole blob): the hook needs only `builders` before its
 * first answer, and 90 more strings in a growing Map cost it ~0.1 ms of CPU and a few heap blocks
 * (bench/README.md "### startup"); it parses the blob again once it has accepted a build.
 */
export function parseSettings(
  bytes: Uint8Array,
  only?: string,
): { settings: Settings; length: number } | "incomplete" | "irregular" {
  // One loop, no helpers, strings sliced from one decode of the whole blob: the hook runs this once,
  // cold, and helper functions called hundreds of times get JIT-compiled first (a third of the CPU
  // this cost, bench/startup.ts).
  const n = bytes.length;
  // All ASCII (valid UTF-8 with one char per byte): then strings are slices of one decode.
  let text = "";
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {}
  const ascii = text.length === n;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const settings: Settings = new Map();
  let at = 0;
  let name: string | undefined;
  let keep = true;
  for (;;) {
    if (at + 8 > n) return "incomplete";
    const high =
      bytes[at + 1]! | bytes[at + 2]! | bytes[at + 3]! | bytes[at + 4]! | bytes[at + 5]! | bytes[at + 6]! | bytes[at + 7]!;
    if (name === undefined) {
      // the marker before each setting: 1, or 0 after the last
      const marker = bytes[at]!;
      at += 8;
      if (high === 0 && marker === 0) return { settings, length: at };
      if (high !== 0 || marker !== 1) return "irregular";
      if (at + 8 > n) return "incomplete";
    }
    if ((bytes[at + 4]! | bytes[at + 5]! | bytes[at + 6]! | bytes[at + 7]!) !== 0) return "irregular"; // beyond any cap
    const len = bytes[at]! + bytes[at + 1]! * 0x100 + bytes[at + 2]! * 0x10000 + bytes[at + 3]! * 0x1000000;
    if (len > DEFAULT_MAX_STRING) return "irregular";
    const start = at + 8;
    const end = start + len;
    const padded = start + len + ((8 - (len % 8)) % 8);
    if (padded > n) return "incomplete";
    // The padding (p < 8 bytes) is the top of the little-endian 8-byte word that ends at `padded`: checked
    // in place, without a loop (one per string would get this function JIT-compiled before the first answer).
    const p = padded - end;
    const top = p > 0 ? view.getUint32(padded - 4, true) : 0;
    if (p > 0 && (p <= 4 ? top >>> (8 * (4 - p)) : top | (view.getUint32(padded - 8, true) >>> (8 * (8 - p)))) !== 0) {
      return "irregular";
    }
    at = padded;
    if (name === undefined) {
      // With `only`, an ASCII name is compared in place: no string for a setting that is not kept.
      if (only !== undefined && ascii) keep = len === only.length && text.startsWith(only, start);
      else {
        name = ascii ? text.slice(start, end) : new TextDecoder().decode(bytes.subarray(start, end));
        keep = only === undefined || name === only;
      }
      name = keep ? (only ?? name!) : "";
    } else {
      if (keep) {
        settings.set(name, ascii ? text.slice(start, end) : new TextDecoder().decode(bytes.subarray(start, end)));
      }
      name = undefined;
    }
  }
}

/**
 * Reads the settings blob. Nix writes it at once, so it is parsed from what has arrived when that
 * is all of it (field by field, 91 settings cost a hook ~5 ms of CPU before its first answer).
 */
/** `only`: see parseSettings (the field-by-field reader, for irregular bytes, still keeps them all). */
export async function readSettings(r: WireReader, only?: string): Promise<Settings> {
  for (;;) {
    const parsed = parseSettings(r.buffered(), only);
    if (parsed === "irregular") break;
    if (parsed !== "incomplete") {
      r.skip(parsed.length);
      return parsed.settings;
    }
    if (!(await r.more())) break;
  }
  return readSettingsByField(r);
}

async function readSettingsByField(r: WireReader): Promise<Settings> {
  const settings: Settings = new Map();
  for (let i = 0; ; i++) {
    const more = await r.u64(`settings record ${i} marker`);
    if (more === 0) return settings;
    if (more !== 1) throw new Error(`bad settings record marker ${more} (expected 0 or 1) in record ${i}`);
    const name = await r.string(`setting name ${i}`);
    settings.set(name, await r.string(`value of setting '${name}'`));
  }
}

export function encodeSettings(settings: Settings): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const [name, value] of settings) parts.push(encodeU64(1), encodeString(name), encodeString(value));
  parts.push(encodeU64(0));
  return concat(parts);
}

/**
 * Pure: the `try` at the start of `bytes` when all of it is there and within the field reader's caps,
 * with its length; "incomplete" when more bytes are needed; "irregular" for anything else (readTry
 * then reads field by field to say what is wrong). One pass with no awaits: the hook's first answer
 * waits for it (bench/startup.ts).
 */
export function parseTry(bytes: Uint8Array): { req: TryRequest; length: number } | "incomplete" | "irregular" {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const decoder = new TextDecoder();
  let at = 0;
  let bad: "incomplete" | "irregular" | undefined;
  const u64 = (cap: number): number => {
    if (at + 8 > bytes.length) bad ??= "incomplete";
    else if (view.getUint32(at + 4, true) !== 0 || view.getUint32(at, true) > cap) bad ??= "irregular";
    else return view.getUint32((at += 8) - 8, true);
    return 0;
  };
  const string = (cap = DEFAULT_MAX_STRING): string => {
    const len = u64(cap);
    if (bad) return "";
    const start = at;
    const end = start + len;
    const padded = end + ((8 - (len % 8)) % 8);
    if (padded > bytes.length) bad = "incomplete";
    else if (!isZero(bytes.subarray(end, padded))) bad = "irregular";
    if (bad) return "";
    at = padded;
    return decoder.decode(bytes.subarray(start, end));
  };
  if (string(64) !== "try") bad ??= "irregular";
  const amWilling = u64(Number.MAX_SAFE_INTEGER) !== 0;
  const system = string();
  const drvPath = string();
  const requiredFeatures: string[] = [];
  for (let i = 0, n = u64(DEFAULT_MAX_LIST); i < n && !bad; i++) requiredFeatures.push(string());
  return bad ?? { req: { amWilling, system, drvPath, requiredFeatures }, length: at };
}

/** Reads the next request; undefined when Nix closed the pipe (no more builds for this hook). */
export async function readTry(r: WireReader): Promise<TryRequest | undefined> {
  if (await r.atEnd()) return undefined;
  for (;;) {
    const parsed = parseTry(r.buffered());
    if (parsed === "irregular") break;
    if (parsed !== "incomplete") {
      r.skip(parsed.length);
      return parsed.req;
    }
    if (!(await r.more())) break;
  }
  return readTryByField(r);
}

async function readTryByField(r: WireReader): Promise<TryRequest> {
  const word = await r.string("request word", 64);
  if (word !== "try") throw new Error(`unexpected request '${word}' from Nix (expected 'try')`);
  return {
    amWilling: await r.bool("amWilling"),
    system: await r.string("system"),
    drvPath: await r.string("drvPath"),
    requiredFeatures: await r.strings("requiredFeatures"),
  };
}

export function encodeTry(t: TryRequest): Uint8Array {
  return concat([
    encodeString("try"),
    encodeU64(t.amWilling ? 1 : 0),
    encodeString(t.system),
    encodeString(t.drvPath),
    encodeStrings(t.requiredFeatures),
  ]);
}

export async function readAccepted(r: WireReader): Promise<AcceptedBuild> {
  return { inputs: await r.strings("inputs"), wantedOutputs: await r.strings("wantedOutputs") };
}

export function encodeAccepted(a: AcceptedBuild): Uint8Array {
  return concat([encodeStrings(a.inputs), encodeStrings(a.wantedOutputs)]);
}

/** `# accept` → "accept"; any other `# word` is returned as-is for the caller to reject. */
export function parseReplyLine(line: string): string | undefined {
  return line.startsWith("# ") ? line.slice(2).trim() : undefined;
}

export function isKnownReply(word: string): word is HookReply {
  return replies.has(word);
}

/**
 * Verbosity is always the last argv element across Nix versions (section 1.2). Nix 2.8 does not cap it
 * (each -v adds one), so anything above 7 (vomit) is 7.
 */
/**
 * Nix's verbosity word: one or two ASCII digits. No regex: the first one a process runs costs ~70 µs of
 * CPU (compiling it), before the hook's first answer (bench/startup.ts).
 */
export function isVerbosity(s: string | undefined): boolean {
  if (s === undefined || s.length < 1 || s.length > 2) return false;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) < 48 || s.charCodeAt(i) > 57) return false;
  return true;
}

export function verbosityFromArgv(args: readonly string[]): number {
  const last = args[args.length - 1];
  const v = last === undefined || !isVerbosity(last) ? Number.NaN : Number(last);
  if (!Number.isInteger(v)) throw new Error(`expected the verbosity (a number, 0-7) as the last argument, got '${last ?? ""}'`);
  return Math.min(v, 7);
}

/** A `@nix` JSON log line, as build-remote and Nix's JSON logger produce. */
export function nixLogLine(msg: Record<string, unknown>): string {
  return `@nix ${JSON.stringify(msg)}\n`;
}

export function nixMsg(level: number, text: string): string {
  return nixLogLine({ action: "msg", level, msg: text });
}

/** What a hook can see of its fds before reading anything. */
export interface HookFds {
  stdin: { charDevice: boolean; rdev: number };
  stdout: { socket: boolean };
}

/**
 * Lix ≥ 2.94 replaced the text protocol with Cap'n Proto RPC: its hook gets /dev/null as stdin and
 * a socketpair as stdout (nix-protocols.md §1.10). Nix and older Lix give a pipe on stdin. Pure.
 */
export function isCapnpHookLaunch(fds: HookFds): boolean {
  const DEV_NULL = (1 << 8) | 3; // major 1, minor 3
  return fds.stdin.charDevice && fds.stdin.rdev === DEV_NULL && fds.stdout.socket;
}
