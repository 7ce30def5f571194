// Small facts a hook learns once and the next hooks may trust for a while: which REST API version
// a slurmrestd speaks, that the agent binary is in place on the cluster. One JSON file per kind
// in the local state directory, written atomically (rename); a fact older than its lifetime, or a
// file that cannot be read, is simply not known, so the caller asks the slow way again.
import fs from "node:fs";
import path from "node:path";

export interface Memo<T> {
  get(key: string): T | undefined;
  set(key: string, value: T): void;
  forget(key: string): void;
}

type Entries<T> = Record<string, { value: T; at: number }>;

/** A file's identity for memos of what running it said: its real path, inode, size and mtime. */
export function fileIdentity(file: string): string | undefined {
  try {
    const real = fs.realpathSync(file);
    const st = fs.statSync(real);
    return `${real} ${st.ino} ${st.size} ${st.mtimeMs}`;
  } catch {
    return undefined;
  }
}

export function fileMemo<T>(dir: string, name: string, lifetimeMs: number, now: () => number = Date.now): Memo<T> {
  const file = path.join(dir, `${name}.json`);
  const read = (): Entries<T> => {
    try {
      const v = JSON.parse(fs.readFileSync(file, "utf8")) as unknown;
      return v && typeof v === "object" && !Array.isArray(v) ? (v as Entries<T>) : {};
    } catch {
      return {};
    }
  };
  const write = (entries: Entries<T>) => {
    try {
      const tmp = `${file}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, JSON.stringify(entries), { mode: 0o600 });
      fs.renameSync(tmp, file);
    } catch {} // a memo that cannot be written costs time, never a build
  };
  return {
    get(key) {
      const e = read()[key];
      if (!e || typeof e.at !== "number" || now() - e.at > lifetimeMs || now() < e.at) return undefined;
      return e.value;
    },
    set(key, value) {
      const entries = read();
      entries[key] = { value, at: now() };
      write(entries);
    },
    forget(key) {
      const entries = read();
      if (!(key in entries)) return;
      delete entries[key];
      write(entries);
    },
  };
}
