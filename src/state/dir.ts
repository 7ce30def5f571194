// The state directory: where every nsh process on the machine keeps what it shares with the others
// (the state database: path cache, transfer budget). Resolution is pure; creation is thin.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

type Env = Record<string, string | undefined>;

/** Where the state lives, in order: $NSH_STATE_DIR, /var/lib/nsh for root, $XDG_STATE_HOME/nsh, ~/.local/state/nsh. */
export function stateDir(env: Env, uid: number = process.getuid?.() ?? -1, home: string = os.homedir()): string {
  const set = (v: string | undefined) => (v !== undefined && v !== "" ? v : undefined);
  const explicit = set(env.NSH_STATE_DIR);
  if (explicit !== undefined) return path.resolve(explicit);
  // Root is the nix-daemon's build hook: one machine-wide directory, as Nix uses /nix/var/nix.
  if (uid === 0) return "/var/lib/nsh";
  // The XDG spec says a relative $XDG_STATE_HOME is invalid and must be ignored.
  const xdg = set(env.XDG_STATE_HOME);
  if (xdg !== undefined && path.isAbsolute(xdg)) return path.join(xdg, "nsh");
  return path.join(set(env.HOME) ?? home, ".local", "state", "nsh");
}

export class StateDirError extends Error {
  constructor(
    readonly dir: string,
    reason: string,
  ) {
    super(`nsh state directory ${dir}: ${reason} (set NSH_STATE_DIR to use another directory)`);
  }
}

/**
 * The state directory, created on first use with mode 0700, also for /var/lib/nsh: the database
 * names the hosts nsh talks to and what they hold, which is nobody else's business, and giving
 * others read access would buy nothing since SQLite in WAL mode needs write access to the -shm
 * file even to read. A directory that already exists keeps the mode its owner chose.
 */
export function ensureStateDir(env: Env = process.env): string {
  const dir = stateDir(env);
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(dir);
  } catch {
    try {
      // Parents too (~/.local/state may not exist yet); the XDG spec asks 0700 for those as well.
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw new StateDirError(dir, `cannot create it: ${errText(e)}`);
    }
  }
  if (st !== undefined && !st.isDirectory()) throw new StateDirError(dir, "exists but is not a directory");
  try {
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
  } catch (e) {
    throw new StateDirError(dir, `not writable by uid ${process.getuid?.() ?? "?"}: ${errText(e)}`);
  }
  return dir;
}

// Node's messages already name the errno and the call ("EACCES: permission denied, mkdir '...'").
const errText = (e: unknown): string => (e instanceof Error ? e.message : String(e));
