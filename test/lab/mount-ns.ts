// Mount namespaces as lab markers (see the comment below); split from proc.ts, which re-exports these.
import fs from "node:fs";

// A lab running from a Debian root (roots.ts) starts each daemon in a private mount namespace, and
// some of their children carry no marker: Slurm >= 24.11's slurmstepd overwrites its environment.
// Every process in such a namespace descends from the lab's daemon, so the namespace is a marker
// too. The namespace is held open (an fd) while it is registered: a freed namespace's inode number
// is reused at once by the next one made, which may be anyone's. Never the host's namespace.
const rootNamespaces = new Map<string, Map<string, number>>();
const hostNamespaces = new Set(["self", "1"].map((p) => mountNamespace(p)).filter((n): n is string => !!n));

/** "mnt:[4026532256]" for a pid, undefined when it is gone or unreadable. */
export function mountNamespace(pid: number | string): string | undefined {
  try {
    return fs.readlinkSync(`/proc/${pid}/ns/mnt`);
  } catch {
    return undefined;
  }
}

/**
 * Hold pid's mount namespace as part of root's marker; returns the namespace held, or undefined (pid
 * gone, the host's namespace, or not `expected`: pid is no longer the process that was registered).
 */
export function holdRootNamespace(root: string, pid: number, expected?: string): string | undefined {
  let fd: number;
  try {
    fd = fs.openSync(`/proc/${pid}/ns/mnt`, "r");
  } catch {
    return undefined;
  }
  const ns = fs.readlinkSync(`/proc/self/fd/${fd}`); // what we hold, whatever pid has become
  const held = rootNamespaces.get(root) ?? new Map<string, number>();
  if (hostNamespaces.has(ns) || held.has(ns) || (expected !== undefined && ns !== expected)) {
    fs.closeSync(fd);
    return held.has(ns) ? ns : undefined;
  }
  held.set(ns, fd);
  rootNamespaces.set(root, held);
  return ns;
}

/** Let go of root's namespaces (after its processes are gone). */
export function releaseRootNamespaces(root: string): void {
  for (const fd of rootNamespaces.get(root)?.values() ?? []) fs.closeSync(fd);
  rootNamespaces.delete(root);
}

/** pid runs in one of root's held namespaces. */
export const inRootNamespace = (root: string, pid: number): boolean =>
  rootNamespaces.get(root)?.has(mountNamespace(pid) ?? "") === true;
