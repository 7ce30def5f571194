// The build hook protocol between Nix and a hook (nix-protocols.md section 1), as a pure codec.
import { DEFAULT_MAX_STRING, WireReader, concat, encodeString, encodeStrings, encodeU64 } from "./wire.ts";

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

/**
 * Pure: the settings blob at the start of `bytes` when all of it is there and regular (markers 1
 * then 0, zero padding, strings under the reader's cap), with its length; "incomplete" when more
 * bytes are needed; "irregular" for anything else, which readSettings reads field by field to say
 * exactly what is wrong.
 */
export function parseSettings(bytes: Uint8Array): { settings: Settings; length: number } | "incomplete" | "irregular" {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const decoder = new TextDecoder();
  const settings: Settings = new Map();
  let at = 0;
  const u64 = (): number | undefined => {
    if (at + 8 > bytes.length) return undefined;
    const lo = view.getUint32(at, true);
    const hi = view.getUint32(at + 4, true);
    at += 8;
    return hi === 0 ? lo : Number.MAX_SAFE_INTEGER; // beyond any cap: irregular
  };
  const string = (): string | undefined | "irregular" => {
    const len = u64();
    if (len === undefined) return undefined;
    if (len > DEFAULT_MAX_STRING) return "irregular";
    const padded = len + ((8 - (len % 8)) % 8);
    if (at + padded > bytes.length) return undefined;
    for (let i = at + len; i < at + padded; i++) if (bytes[i] !== 0) return "irregular";
    const text = decoder.decode(bytes.subarray(at, at + len));
    at += padded;
    return text;
  };
  for (;;) {
    const marker = u64();
    if (marker === undefined) return "incomplete";
    if (marker === 0) return { settings, length: at };
    if (marker !== 1) return "irregular";
    const name = string();
    if (name === "irregular") return name;
    const value = name === undefined ? undefined : string();
    if (value === "irregular") return value;
    if (name === undefined || value === undefined) return "incomplete";
    settings.set(name, value);
  }
}

/**
 * Reads the settings blob. Nix writes it at once, so it is parsed from what has arrived when that
 * is all of it (field by field, 91 settings cost a hook ~5 ms of CPU before its first answer).
 */
export async function readSettings(r: WireReader): Promise<Settings> {
  for (;;) {
    const parsed = parseSettings(r.buffered());
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

/** Reads the next request; undefined when Nix closed the pipe (no more builds for this hook). */
export async function readTry(r: WireReader): Promise<TryRequest | undefined> {
  if (await r.atEnd()) return undefined;
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
export function verbosityFromArgv(args: readonly string[]): number {
  const last = args.at(-1);
  const v = last === undefined || !/^\d{1,2}$/.test(last) ? Number.NaN : Number(last);
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
