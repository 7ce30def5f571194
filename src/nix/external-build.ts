// The build description Nix ≥ 2.32 hands an `external-builders` program (experimental feature
// `external-builders`; libstore/unix/build/external-derivation-builder.cc). Nix writes it to
// `<topTmpDir>/build.json` and runs `<program> <args…> <that file>` in place of the builder, with
// stdin /dev/null and stdout+stderr the build log. Version 1:
//   {version, builder, args, env, topTmpDir, tmpDir, tmpDirInSandbox, storeDir, realStoreDir,
//    system, inputPaths (closure of the inputs), outputs {name: path to produce}}
// It names no derivation path: the derivation is found by its name and output paths (pure here).
import type { Derivation } from "./derivation.ts";

export interface ExternalBuild {
  version: number;
  builder: string;
  args: string[];
  env: Record<string, string>;
  topTmpDir: string;
  tmpDir: string;
  storeDir: string;
  realStoreDir: string;
  system: string;
  inputPaths: string[];
  /** output name → the path Nix expects the output at (in realStoreDir), unregistered */
  outputs: Record<string, string>;
}

export class ExternalBuildError extends Error {}

const isStringList = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === "string");
const isStringMap = (v: unknown): v is Record<string, string> =>
  typeof v === "object" && v !== null && !Array.isArray(v) && Object.values(v).every((s) => typeof s === "string");

/** Pure: the JSON text of build.json (`where` names the file in messages). */
export function parseExternalBuild(text: string, where: string): ExternalBuild {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new ExternalBuildError(`${where}: not JSON (${(e as Error).message})`);
  }
  if (typeof j !== "object" || j === null || Array.isArray(j)) throw new ExternalBuildError(`${where}: not a JSON object`);
  if (j.version !== 1) throw new ExternalBuildError(`${where}: version ${JSON.stringify(j.version)}, nsh knows version 1 only`);
  const str = (k: string): string => {
    if (typeof j[k] !== "string" || j[k] === "") throw new ExternalBuildError(`${where}: '${k}' must be a non-empty string`);
    return j[k] as string;
  };
  for (const k of ["args", "inputPaths"])
    if (!isStringList(j[k])) throw new ExternalBuildError(`${where}: '${k}' must be a list of strings`);
  for (const k of ["env", "outputs"])
    if (!isStringMap(j[k])) throw new ExternalBuildError(`${where}: '${k}' must be an object of strings`);
  const outputs = j.outputs as Record<string, string>;
  if (Object.keys(outputs).length === 0) throw new ExternalBuildError(`${where}: 'outputs' is empty`);
  return {
    version: 1,
    builder: str("builder"),
    args: j.args as string[],
    env: j.env as Record<string, string>,
    topTmpDir: str("topTmpDir"),
    tmpDir: str("tmpDir"),
    storeDir: str("storeDir"),
    realStoreDir: typeof j.realStoreDir === "string" && j.realStoreDir ? j.realStoreDir : str("storeDir"),
    system: str("system"),
    inputPaths: j.inputPaths as string[],
    outputs,
  };
}

/**
 * Pure: the derivation's file name (`<name>.drv`). Nix names the build directory
 * `nix-build-<name>.drv-<n>`; else the derivation's `name` attribute (every derivation has one).
 */
export function derivationFileName(b: Pick<ExternalBuild, "topTmpDir" | "env">): string | undefined {
  const base = b.topTmpDir.replace(/\/+$/, "").split("/").at(-1) ?? "";
  const m = /^nix-build-(.+\.drv)-\d+$/.exec(base);
  if (m) return m[1];
  return b.env.name ? `${b.env.name}.drv` : undefined;
}

/** Pure: whether `drv` is the derivation being built: every output Nix wants is one of its outputs, at that path. */
export function isTheDerivation(
  drv: Pick<Derivation, "outputs" | "platform">,
  b: Pick<ExternalBuild, "outputs" | "system">,
): boolean {
  if (drv.platform !== b.system) return false;
  return Object.entries(b.outputs).every(([name, path]) => drv.outputs.get(name)?.path === path);
}

/**
 * Pure: the program's own arguments (the setting's `args`), then Nix's file last. `--verbosity N`
 * (0 errors … 7 vomit; default 3, info) sets how much of nsh's own messages go to the build log.
 */
export function parseExternalBuilderArgs(argv: readonly string[]): { file: string; verbosity: number } {
  const file = argv.at(-1);
  if (!file || file.startsWith("-"))
    throw new ExternalBuildError("expected the build description Nix writes (…/build.json) as the last argument");
  let verbosity = 3;
  const own = argv.slice(0, -1);
  for (let i = 0; i < own.length; i++) {
    const a = own[i]!;
    const m = /^--verbosity(?:=(.*))?$/.exec(a);
    const v = m ? (m[1] ?? own[++i]) : undefined;
    if (!m || v === undefined || !/^\d{1,2}$/.test(v))
      throw new ExternalBuildError(`unknown argument '${a}' (external-builders args: --verbosity N, 0-7)`);
    verbosity = Number(v);
  }
  return { file, verbosity };
}

/**
 * Pure: the build user Nix runs us as, if any. With build users (`build-users-group`,
 * `auto-allocate-uids`) Nix ≥ 2.32 switches the external builder to the build's user like any
 * builder (setUser()), while its own process (our parent) stays root. `parentStatus` is the text
 * of /proc/<ppid>/status.
 */
export function buildUserOf(selfUid: number, parentStatus: string): number | undefined {
  const parentUid = /^Uid:\s+(\d+)/m.exec(parentStatus)?.[1];
  return selfUid !== 0 && parentUid === "0" ? selfUid : undefined;
}

/** Why nsh as a build user falls short (Nix 2.34's DerivationBuilderImpl::killSandbox → killUser). */
export function buildUserWarning(uid: number): string {
  return (
    `nsh runs as build user ${uid} (Nix's build-users-group or auto-allocate-uids): it needs read access to ` +
    "nsh.conf, the JWT and ssh keys and write access to its state dir as that user, and when Nix stops the build " +
    "(interrupt, timeout) it kills every process of the user, nsh's job reaper included, so a queued job is not " +
    "cancelled and a running one ends only when its agent misses nsh (about 15 s); see the README, " +
    "'nsh as an external builder'"
  );
}
