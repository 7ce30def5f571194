// The directory where one user's nix-sigstop runs take turns resuming (resume.lock, stopped/<pid>,
// waiting/<pid>). Another local user must not be able to steer what we open there: the directory must
// be a real directory (not a symbolic link) that is ours and that nobody else can write, and every file
// in it is opened without following symbolic links and never chmodded or truncated.
import fs from "node:fs";
import path from "node:path";

/** What lstat/fstat says about a would-be shared directory. */
export interface DirFacts {
  kind: "directory" | "symlink" | "other";
  uid: number;
  /** permission bits, with setuid/setgid/sticky */
  mode: number;
}

export type DirVerdict = { use: true; tighten: boolean } | { use: false; why: string };

const octal = (mode: number) => (mode & 0o7777).toString(8).padStart(4, "0");

/**
 * Pure: may `euid` use this directory? Only one that is its own and writable by nobody else. Ours but
 * writable by others (what nix-sigstop itself made before: 1777) is tightened to 0700 when `mayTighten`
 * (the default directory); a directory the user named is refused instead of having its mode changed.
 */
export function judgeSharedDir(f: DirFacts, euid: number, mayTighten: boolean): DirVerdict {
  if (f.kind === "symlink") return { use: false, why: "it is a symbolic link" };
  if (f.kind !== "directory") return { use: false, why: "it is not a directory" };
  if (f.uid !== euid) return { use: false, why: `it belongs to uid ${f.uid}, not to you (uid ${euid})` };
  if ((f.mode & 0o022) === 0) return { use: true, tighten: false };
  if (mayTighten) return { use: true, tighten: true };
  return { use: false, why: `others can write to it (mode ${octal(f.mode)}); make it yours alone (chmod go-w)` };
}

/**
 * Pure: root's runs share /run/nix-sigstop across the host; anyone else's share a directory named after
 * their uid (the same for every run of theirs, whatever its environment says), created 0700.
 */
export function defaultSharedDir(euid: number, runExists: boolean): string {
  return euid === 0 && runExists ? "/run/nix-sigstop" : `/tmp/nix-sigstop-${euid}`;
}

export class SharedDirRefused extends Error {}

/** An open, checked shared directory. `path` reaches it through our descriptor (held until exit), so
 * renaming it away or swapping a parent for a symbolic link afterwards changes nothing; `name` is what to
 * show the user. */
export interface SharedDir {
  path: string;
  name: string;
}

const O_DIR = fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW;

function facts(st: fs.Stats): DirFacts {
  const kind = st.isDirectory() ? "directory" : st.isSymbolicLink() ? "symlink" : "other";
  return { kind, uid: st.uid, mode: st.mode };
}

/** Makes `dir` (0700) if missing, opens it without following a symbolic link, checks it; returns the fd. */
function openCheckedDir(dir: string, shownAs: string, mayTighten: boolean, recursive: boolean): number {
  const euid = process.geteuid?.() ?? 0;
  let mkdirError: Error | undefined;
  try {
    fs.mkdirSync(dir, { recursive, mode: 0o700 });
  } catch (e) {
    mkdirError = e as Error; // it exists (judged below), or the open below says what is wrong
  }
  let fd: number;
  try {
    fd = fs.openSync(dir, O_DIR);
  } catch (e) {
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(dir);
    } catch {}
    const v = st && judgeSharedDir(facts(st), euid, mayTighten);
    if (v && !v.use) throw new SharedDirRefused(`${shownAs}: ${v.why}`);
    const why = st ? (e as Error).message : `cannot create it: ${(mkdirError ?? (e as Error)).message}`;
    throw new SharedDirRefused(`${shownAs}: ${why}`);
  }
  const v = judgeSharedDir(facts(fs.fstatSync(fd)), euid, mayTighten);
  if (!v.use) {
    fs.closeSync(fd);
    throw new SharedDirRefused(`${shownAs}: ${v.why}`);
  }
  if (v.tighten) fs.fchmodSync(fd, 0o700);
  return fd;
}

/**
 * Opens and checks the shared directory and its stopped/ and waiting/ subdirectories (see judgeSharedDir).
 * Throws SharedDirRefused with a message naming the directory and what is wrong with it.
 */
export function openSharedDir(dir: string, isDefault: boolean): SharedDir {
  const fd = openCheckedDir(dir, dir, isDefault, !isDefault);
  const via = `/proc/self/fd/${fd}`;
  try {
    // Inside a directory of ours: subdirectories an older nix-sigstop made 1777 are ours to tighten.
    for (const sub of ["stopped", "waiting"]) {
      fs.closeSync(openCheckedDir(path.join(via, sub), path.join(dir, sub), true, false));
    }
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
  return { path: via, name: dir };
}

/**
 * The shared directory for this run: `given` (--shared-dir), else the default. One that may not be used
 * is not fatal: nix-sigstop says why once and runs on, its resumptions not taking turns with other runs.
 */
export function useSharedDir(given: string | undefined, warn: (msg: string) => void): SharedDir | undefined {
  const dir = given ?? defaultSharedDir(process.geteuid?.() ?? 0, fs.existsSync("/run"));
  try {
    return openSharedDir(dir, given === undefined);
  } catch (e) {
    const why = e instanceof SharedDirRefused ? e.message : `${dir}: ${(e as Error).message}`;
    warn(`not using the shared directory (${why}); resumptions will not take turns with your other runs`
      + " (see --shared-dir)");
    return undefined;
  }
}

/** Opens (creating 0600 if missing) the turn lock read-only: flock needs no more, so nothing is written. */
export function openTurnLock(sharedPath: string): number {
  const file = path.join(sharedPath, "resume.lock");
  const c = fs.constants;
  const fd = fs.openSync(file, c.O_RDONLY | c.O_CREAT | c.O_NOFOLLOW | c.O_NONBLOCK, 0o600);
  const st = fs.fstatSync(fd);
  if (!st.isFile() || st.uid !== (process.geteuid?.() ?? 0)) {
    fs.closeSync(fd);
    throw new SharedDirRefused("resume.lock there is not a file of yours");
  }
  return fd;
}

/** Creates an empty entry (stopped/<pid>, waiting/<pid>); an existing one, or anything that is not a plain
 * new file (a symbolic link, a FIFO), is left as it is. */
export function touchEntry(dir: string, name: string): void {
  const c = fs.constants;
  try {
    fs.closeSync(fs.openSync(path.join(dir, name), c.O_WRONLY | c.O_CREAT | c.O_EXCL | c.O_NOFOLLOW | c.O_NONBLOCK, 0o600));
  } catch {} // there already (ours: fine), or not ours to touch
}
