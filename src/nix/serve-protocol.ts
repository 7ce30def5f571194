// Client side of Nix's serve protocol (`nix-store --serve --write`, the ssh:// legacy store):
// request encoders and reply readers, pure. Framing per libstore/serve-protocol.hh and
// nix-store.cc's opServe, Nix 2.8 to 2.35 and Lix. The protocol has no error frames: a failing
// server writes to stderr and exits, so callers should treat EOF as "see the remote's stderr".
// Keep the server's stdin open until a reply has arrived: on hang-up it interrupts a running
// build ("interrupted by the user", exit 1, no reply; checked with Nix 2.8).

import type { Derivation, DerivationOutput } from "./derivation.ts";
import { parseNarHash, toBase16 } from "./hash.ts";
import { DEFAULT_STORE_DIR } from "./store-path.ts";
import { type WireReader, concat, encodeString, encodeStrings, encodeU64 } from "./wire.ts";

export const SERVE_MAGIC_1 = 0x390c9deb;
export const SERVE_MAGIC_2 = 0x5452eecb;
/** 2.7: every server from Nix 2.8 to 2.35 and Lix then frames replies alike (see readBuildResult). */
export const SERVE_PROTOCOL_VERSION = 0x207;
/** Oldest server we talk to: 2.5 brought AddToStoreNar. */
export const SERVE_MIN_MINOR = 5;

export const ServeCommand = {
  QueryValidPaths: 1,
  QueryPathInfos: 2,
  DumpStorePath: 3,
  ImportPaths: 4,
  ExportPaths: 5,
  BuildPaths: 6,
  QueryClosure: 7,
  BuildDerivation: 8,
  AddToStoreNar: 9,
} as const;

export class ServeProtocolError extends Error {
  override name = "ServeProtocolError";
}

export const serveMajor = (version: number): number => version & 0xff00;
export const serveMinor = (version: number): number => version & 0x00ff;

/**
 * The minor version both sides use for conditional fields: servers gate on the client's
 * version (2.8) or on min(client, own) (newer), and never send fields they do not know.
 */
export function negotiatedMinor(serverVersion: number, clientVersion = SERVE_PROTOCOL_VERSION): number {
  return Math.min(serveMinor(serverVersion), serveMinor(clientVersion));
}

export function encodeHello(version = SERVE_PROTOCOL_VERSION): Uint8Array {
  return concat([encodeU64(SERVE_MAGIC_1), encodeU64(version)]);
}

/** Reads the server's magic and version; returns the version (e.g. 0x207). */
export async function readHello(r: WireReader): Promise<number> {
  const raw = await r.bytes(8, "serve protocol magic from the remote");
  const magic = new DataView(raw.buffer, raw.byteOffset, 8).getBigUint64(0, true);
  if (magic !== BigInt(SERVE_MAGIC_2)) {
    // Usually a login script printing to stdout, or a remote without `nix-store`.
    const text = new TextDecoder().decode(raw);
    const printable = /^[\x20-\x7e\r\n\t]*$/.test(text)
      ? ` (text ${JSON.stringify(text)}: does the remote shell print to stdout?)`
      : "";
    const got = `got 0x${magic.toString(16)}${printable}`;
    throw new ServeProtocolError(`protocol mismatch: expected serve magic 0x${SERVE_MAGIC_2.toString(16)}, ${got}`);
  }
  const version = await r.u64("serve protocol version of the remote");
  const v = `${serveMajor(version) >> 8}.${serveMinor(version)}`;
  if (serveMajor(version) !== 0x200) {
    throw new ServeProtocolError(`unsupported serve protocol version ${v} of the remote: need major version 2`);
  }
  if (serveMinor(version) < SERVE_MIN_MINOR) {
    throw new ServeProtocolError(
      `the remote's serve protocol ${v} is too old: need 2.${SERVE_MIN_MINOR} or newer (AddToStoreNar)`,
    );
  }
  return version;
}

const cmd = (c: number) => encodeU64(c);
const bool = (b: boolean) => encodeU64(b ? 1 : 0);

export function encodeQueryValidPaths(lock: boolean, substitute: boolean, paths: readonly string[]): Uint8Array {
  return concat([cmd(ServeCommand.QueryValidPaths), bool(lock), bool(substitute), encodeStrings(paths)]);
}

export function encodeQueryPathInfos(paths: readonly string[]): Uint8Array {
  return concat([cmd(ServeCommand.QueryPathInfos), encodeStrings(paths)]);
}

/** The reply is a bare NAR: read it with readNar, which stops at its end. */
export function encodeDumpStorePath(path: string): Uint8Array {
  return concat([cmd(ServeCommand.DumpStorePath), encodeString(path)]);
}

/** Just the command: the caller then streams an export (export.ts) and reads readAck. */
export function encodeImportPaths(): Uint8Array {
  return cmd(ServeCommand.ImportPaths);
}

export function encodeQueryClosure(includeOutputs: boolean, paths: readonly string[]): Uint8Array {
  return concat([cmd(ServeCommand.QueryClosure), bool(includeOutputs), encodeStrings(paths)]);
}

export interface BuildOptions {
  /** Seconds; 0 means no limit. */
  maxSilentTime: number;
  buildTimeout: number;
  /** Bytes; 0 means no limit. */
  maxLogSize: number;
  /** Extra rounds; always 0 (1 builds twice). */
  buildRepeat: 0;
  enforceDeterminism: boolean;
  keepFailed: boolean;
}

export const DEFAULT_BUILD_OPTIONS: BuildOptions = {
  maxSilentTime: 0,
  buildTimeout: 0,
  maxLogSize: 0,
  buildRepeat: 0,
  enforceDeterminism: false,
  keepFailed: false,
};

/** Fields after the first two exist only from the minor version that introduced them. */
export function encodeBuildOptions(o: BuildOptions, minor: number): Uint8Array {
  const parts = [encodeU64(o.maxSilentTime), encodeU64(o.buildTimeout)];
  if (minor >= 2) parts.push(encodeU64(o.maxLogSize));
  if (minor >= 3) parts.push(encodeU64(o.buildRepeat), bool(o.enforceDeterminism));
  if (minor >= 7) parts.push(bool(o.keepFailed));
  return concat(parts);
}

/** `/nix/store/…drv!out,dev` as BuildPaths expects (StorePathWithOutputs); no outputs → the bare path. */
export function pathWithOutputs(path: string, outputs: readonly string[] = []): string {
  return outputs.length === 0 ? path : `${path}!${outputs.join(",")}`;
}

export function encodeBuildPaths(paths: readonly string[], options: BuildOptions, minor: number): Uint8Array {
  return concat([cmd(ServeCommand.BuildPaths), encodeStrings(paths), encodeBuildOptions(options, minor)]);
}

/** A derivation without inputDrvs, as BuildDerivation sends it (derivations.cc writeDerivation). */
export interface BasicDerivation {
  /** Output name → (path, hashAlgo, hash), exactly the strings of the .drv ATerm. */
  outputs: ReadonlyMap<string, DerivationOutput>;
  inputSrcs: readonly string[];
  platform: string;
  builder: string;
  args: readonly string[];
  env: ReadonlyMap<string, string>;
}

/**
 * The BasicDerivation for a parsed .drv. The remote never sees inputDrvs, so when there are
 * any, the input closure (all paths the build needs, as Nix passes to the hook) replaces
 * inputSrcs, like build-remote does; without inputDrvs inputSrcs stay (changing them would
 * change content-addressed output ids).
 */
export function basicDerivation(drv: Derivation, inputClosure?: readonly string[]): BasicDerivation {
  let inputSrcs = drv.inputSrcs;
  if (drv.inputDrvs.size > 0) {
    if (inputClosure === undefined) {
      throw new ServeProtocolError("the derivation has inputDrvs: pass its input closure to replace inputSrcs");
    }
    inputSrcs = [...inputClosure];
  }
  const { outputs, platform, builder, args, env } = drv;
  return { outputs, inputSrcs, platform, builder, args, env };
}

export function encodeBasicDerivation(d: BasicDerivation): Uint8Array {
  const parts: Uint8Array[] = [encodeU64(d.outputs.size)];
  for (const [name, o] of d.outputs) {
    parts.push(encodeString(name), encodeString(o.path), encodeString(o.hashAlgo), encodeString(o.hash));
  }
  parts.push(encodeStrings(d.inputSrcs), encodeString(d.platform), encodeString(d.builder));
  parts.push(encodeStrings(d.args), encodeU64(d.env.size));
  for (const [k, v] of d.env) parts.push(encodeString(k), encodeString(v));
  return concat(parts);
}

export function encodeBuildDerivation(
  drvPath: string, drv: BasicDerivation, options: BuildOptions, minor: number,
): Uint8Array {
  const head = [cmd(ServeCommand.BuildDerivation), encodeString(drvPath)];
  return concat([...head, encodeBasicDerivation(drv), encodeBuildOptions(options, minor)]);
}

export interface AddToStoreNarInfo {
  path: string;
  deriver?: string;
  /** Raw 32 bytes or any form parseNarHash accepts; sent as bare base16, which Nix 2.8 parses. */
  narHash: Uint8Array | string;
  references: readonly string[];
  /** Unix seconds; 0 when unknown. */
  registrationTime?: number;
  /** Must be > 0 (the server rejects 0), and exactly that many NAR bytes must follow. */
  narSize: number;
  ultimate?: boolean;
  sigs?: readonly string[];
  ca?: string;
}

/** Header of AddToStoreNar; then stream exactly narSize NAR bytes and read readAck. */
export function encodeAddToStoreNar(info: AddToStoreNarInfo): Uint8Array {
  if (!(info.narSize > 0)) {
    throw new ServeProtocolError(`AddToStoreNar of ${info.path}: narSize must be positive, got ${info.narSize}`);
  }
  const hash = typeof info.narHash === "string" ? parseNarHash(info.narHash) : info.narHash;
  if (hash.length !== 32) {
    throw new ServeProtocolError(`AddToStoreNar of ${info.path}: narHash must be 32 bytes, got ${hash.length}`);
  }
  return concat([
    cmd(ServeCommand.AddToStoreNar),
    encodeString(info.path),
    encodeString(info.deriver ?? ""),
    encodeString(toBase16(hash)),
    encodeStrings(info.references),
    encodeU64(info.registrationTime ?? 0),
    encodeU64(info.narSize),
    bool(info.ultimate ?? false),
    encodeStrings(info.sigs ?? []),
    encodeString(info.ca ?? ""),
  ]);
}

// ---- replies ----

export async function readPathSet(r: WireReader, what = "path set"): Promise<string[]> {
  return r.strings(what);
}

/** ImportPaths and AddToStoreNar answer u64 1 once the paths are registered. */
export async function readAck(r: WireReader, what: string): Promise<void> {
  const v = await r.u64(`reply to ${what}`);
  if (v !== 1) throw new ServeProtocolError(`expected 1 as reply to ${what}, got ${v}`);
}

export interface ServePathInfo {
  deriver?: string;
  references: string[];
  downloadSize: number;
  narSize: number;
  /** As the server prints it (`sha256:<nix32>`); "" below minor 4. */
  narHash: string;
  ca?: string;
  sigs: string[];
}

/** QueryPathInfos reply: one record per valid path, ended by an empty path. */
export async function readPathInfos(
  r: WireReader, minor = serveMinor(SERVE_PROTOCOL_VERSION),
): Promise<Map<string, ServePathInfo>> {
  const infos = new Map<string, ServePathInfo>();
  for (;;) {
    const path = await r.string(`path of path info ${infos.size}`);
    if (path === "") return infos;
    const deriver = await r.string(`deriver of ${path}`);
    const references = await r.strings(`references of ${path}`);
    const downloadSize = await r.u64(`downloadSize of ${path}`);
    const narSize = await r.u64(`narSize of ${path}`);
    let narHash = "";
    let ca = "";
    let sigs: string[] = [];
    if (minor >= 4) {
      narHash = await r.string(`narHash of ${path}`);
      ca = await r.string(`ca of ${path}`);
      sigs = await r.strings(`sigs of ${path}`);
    }
    infos.set(path, {
      ...(deriver === "" ? {} : { deriver }),
      references,
      downloadSize,
      narSize,
      narHash,
      ...(ca === "" ? {} : { ca }),
      sigs,
    });
  }
}

export const BUILD_STATUS_NAMES = [
  "Built",
  "Substituted",
  "AlreadyValid",
  "PermanentFailure",
  "InputRejected",
  "OutputRejected",
  "TransientFailure",
  "CachedFailure",
  "TimedOut",
  "MiscFailure",
  "DependencyFailed",
  "LogLimitExceeded",
  "NotDeterministic",
  "ResolvesToAlreadyValid",
  "NoSubstituters",
] as const;

export const buildStatusName = (status: number): string => BUILD_STATUS_NAMES[status] ?? `Unknown(${status})`;

/** Nix's BuildResult::success(): Built, Substituted, AlreadyValid, ResolvesToAlreadyValid. */
export const isBuildSuccess = (status: number): boolean => status <= 2 || status === 13;

export interface BuiltOutput {
  /** Full store path. */
  outPath: string;
  signatures: string[];
}

export interface BuildResult {
  status: number;
  statusName: string;
  /** May contain ANSI colour codes. */
  errorMsg: string;
  timesBuilt: number;
  isNonDeterministic: boolean;
  /** Unix seconds; 0 below minor 3. */
  startTime: number;
  stopTime: number;
  /** Output name → path; empty below minor 6. */
  builtOutputs: Map<string, BuiltOutput>;
}

const fullPath = (p: string, storeDir: string) => (p.startsWith("/") ? p : `${storeDir.replace(/\/+$/, "")}/${p}`);

/** One JSON realisation of the minor 6–7 form (key `sha256:<hex>!<output>`). */
function parseRealisation(key: string, json: string, storeDir: string): [string, BuiltOutput] {
  const bang = key.lastIndexOf("!");
  if (bang === -1) throw new ServeProtocolError(`built output id '${key}' lacks '!<output>'`);
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch (e) {
    throw new ServeProtocolError(`realisation of '${key}' is not JSON: ${(e as Error).message}`);
  }
  const o = v as { outPath?: unknown; signatures?: unknown };
  if (typeof v !== "object" || v === null || typeof o.outPath !== "string") {
    throw new ServeProtocolError(`realisation of '${key}' has no string outPath`);
  }
  const sigs = Array.isArray(o.signatures) ? o.signatures.filter((s): s is string => typeof s === "string") : [];
  return [key.slice(bang + 1), { outPath: fullPath(o.outPath, storeDir), signatures: sigs }];
}

/**
 * BuildDerivation reply. `minor` is negotiatedMinor(): 6–7 send builtOutputs as JSON
 * realisations (Nix 2.4–2.10 servers send them whatever the client announced, so announce
 * ≥ 2.6), 8 as (name, path, sigs). `storeDir` resolves the base names JSON realisations carry.
 */
export async function readBuildResult(
  r: WireReader, minor: number, storeDir = DEFAULT_STORE_DIR,
): Promise<BuildResult> {
  const status = await r.u64("build status");
  const errorMsg = await r.string("build error message");
  const res: BuildResult = {
    status,
    statusName: buildStatusName(status),
    errorMsg,
    timesBuilt: 0,
    isNonDeterministic: false,
    startTime: 0,
    stopTime: 0,
    builtOutputs: new Map(),
  };
  if (minor >= 3) {
    res.timesBuilt = await r.u64("timesBuilt");
    res.isNonDeterministic = await r.bool("isNonDeterministic");
    res.startTime = await r.u64("startTime");
    res.stopTime = await r.u64("stopTime");
  }
  if (minor >= 6) {
    const n = await r.u64("count of builtOutputs");
    for (let i = 0; i < n; i++) {
      if (minor >= 8) {
        const name = await r.string(`builtOutputs[${i}] name`);
        const path = await r.string(`builtOutputs[${i}] path`);
        const signatures = await r.strings(`builtOutputs[${i}] signatures`);
        res.builtOutputs.set(name, { outPath: fullPath(path, storeDir), signatures });
      } else {
        const key = await r.string(`builtOutputs[${i}] id`);
        const json = await r.string(`builtOutputs[${i}] realisation`, 16 << 20);
        const [name, out] = parseRealisation(key, json, storeDir);
        res.builtOutputs.set(name, out);
      }
    }
  }
  return res;
}

export type BuildPathsResult = { ok: true } | { ok: false; status: number; errorMsg: string };

/** BuildPaths reply: 0, or the failure's exit status (1, or 100+ bits as in nix-build) and message. */
export async function readBuildPathsResult(r: WireReader): Promise<BuildPathsResult> {
  const status = await r.u64("BuildPaths status");
  if (status === 0) return { ok: true };
  return { ok: false, status, errorMsg: await r.string("BuildPaths error message") };
}

