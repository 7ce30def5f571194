// Store path syntax as Nix checks it (libstore/path.cc: StorePath, checkName;
// store-api.cc: parseStorePath). Pure: nothing here touches the file system.

/** Nix's base-32 alphabet: digits and lower-case letters without e, o, u, t. */
export const NIX_BASE32_CHARS = "0123456789abcdfghijklmnpqrsvwxyz";

/** Length of the hash part of a store path's base name (160 bits in base 32). */
export const STORE_PATH_HASH_LENGTH = 32;

/** Longest name Nix accepts after `<hash>-` (StorePath::MaxPathLen). */
export const STORE_PATH_MAX_NAME_LENGTH = 211;

export const DEFAULT_STORE_DIR = "/nix/store";

export interface StorePath {
  storeDir: string;
  hash: string;
  name: string;
}

export class StorePathError extends Error {
  override name = "StorePathError";
}

const BASE32_SET = new Set(NIX_BASE32_CHARS);
const NAME_RE = /^[A-Za-z0-9+\-._?=]+$/;

/** Strip trailing slashes so "/nix/store/" and "/nix/store" compare equal; keep "/" itself. */
function normaliseStoreDir(storeDir: string): string {
  const trimmed = storeDir.replace(/\/+$/, "");
  return trimmed === "" ? "/" : trimmed;
}

/**
 * Why a store path name is invalid, or undefined when it is valid.
 * Besides the character set and length (all Nix versions), Nix 2.21+ rejects
 * "." and ".." as the first dash-separated component; we apply that too since
 * such names can never be valid on every supported Nix.
 */
export function storePathNameProblem(name: string): string | undefined {
  if (name === "") return "name is empty";
  if (name.length > STORE_PATH_MAX_NAME_LENGTH) {
    return `name is longer than ${STORE_PATH_MAX_NAME_LENGTH} characters`;
  }
  if (!NAME_RE.test(name)) {
    const bad = [...name].find((c) => !NAME_RE.test(c)) ?? "?";
    return `name contains illegal character '${bad}'`;
  }
  const first = name.split("-", 1)[0];
  if (first === "." || first === "..") {
    return `first dash-separated component of the name must not be '${first}'`;
  }
  return undefined;
}

/**
 * Parse `<storeDir>/<32 base-32 chars>-<name>`. Like Nix, only a direct child of
 * the store directory is a store path (no sub-paths); unlike Nix we do not
 * canonicalise ("//", "..", trailing "/") but reject such spellings.
 */
export function parseStorePath(path: string, storeDir: string = DEFAULT_STORE_DIR): StorePath {
  const dir = normaliseStoreDir(storeDir);
  if (!dir.startsWith("/")) {
    throw new StorePathError(`store directory '${storeDir}' is not an absolute path`);
  }
  const prefix = dir === "/" ? "/" : `${dir}/`;
  if (!path.startsWith(prefix)) {
    throw new StorePathError(`path '${path}' is not in the Nix store '${dir}'`);
  }
  const base = path.slice(prefix.length);
  if (base.includes("/")) {
    throw new StorePathError(`path '${path}' is not a direct child of the Nix store '${dir}'`);
  }
  if (base.length < STORE_PATH_HASH_LENGTH + 2) {
    throw new StorePathError(`'${base}' is too short to be a valid store path`);
  }
  const hash = base.slice(0, STORE_PATH_HASH_LENGTH);
  for (const c of hash) {
    if (!BASE32_SET.has(c)) {
      throw new StorePathError(`store path '${path}' contains illegal base-32 character '${c}'`);
    }
  }
  if (base[STORE_PATH_HASH_LENGTH] !== "-") {
    throw new StorePathError(`store path '${path}' lacks the '-' after its hash`);
  }
  const name = base.slice(STORE_PATH_HASH_LENGTH + 1);
  const problem = storePathNameProblem(name);
  if (problem !== undefined) {
    throw new StorePathError(`store path '${path}' is invalid: ${problem}`);
  }
  return { storeDir: dir, hash, name };
}

export function isStorePath(path: string, storeDir: string = DEFAULT_STORE_DIR): boolean {
  try {
    parseStorePath(path, storeDir);
    return true;
  } catch (e) {
    if (e instanceof StorePathError) return false;
    throw e;
  }
}

/** Nix treats any store path whose name ends in ".drv" as a derivation. */
export function isDerivationPath(path: string, storeDir: string = DEFAULT_STORE_DIR): boolean {
  return isStorePath(path, storeDir) && path.endsWith(".drv");
}
