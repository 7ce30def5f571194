// The PBS lab's network: a namespace of its own with a veth pair, host names in
// /etc/hosts, and the teardown that stops everything inside the namespace.
//
// Why a namespace: every OpenPBS daemon refuses a host name that resolves only
// to 127.0.0.0/8, and test traffic may go only to loopback or to namespaces we
// create, so the daemons live in `nshpbs-<id>` (addresses from 10.231.128+.x/30)
// and clients in the host namespace reach them over the veth pair. Every
// process in the namespace (daemons, datastore, jobs) is found by its network
// namespace inode (/proc/<pid>/ns/net): a job cannot leave the namespace, so
// the sweep is complete. Each lab's state sits in /run/nsh-lab/pbs/<id>.json,
// so a later start can tear down what a killed run left (owner PID gone), and
// the watchdog runs `bun test/lab/pbs-netns.ts cleanup <state file>`.
import * as fs from "node:fs";
import * as path from "node:path";
import { withFileLock } from "./flock.ts";
import { isAlive, removeTree, runCommand, sleep, trySignal, type RunResult } from "./proc.ts";

const SYS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
export const STATE_DIR = "/run/nsh-lab/pbs";
const HOSTS_LOCK = "/run/nsh-lab/hosts.lock";
const HOSTS_FILE = process.env.NSH_LAB_HOSTS_FILE ?? "/etc/hosts";
const HOSTS_TAG = "# nsh PBS lab";

export interface NetnsState {
  id: string;
  /** the test process that owns the lab, and its start time (PIDs are reused) */
  ownerPid: number;
  ownerStart: string;
  netns: string;
  /** "net:[4026532…]" once the namespace exists */
  ino: string;
  hostIf: string;
  nsIf: string;
  hostAddr: string;
  nsAddr: string;
  /** ns side = PBS_SERVER; host side = where clients appear to come from */
  nsHost: string;
  hostHost: string;
  /** the lab's directory (PBS_HOME, pbs.conf, logs), removed at teardown */
  root: string;
  /** datastore/postmaster.pid: the postmaster gets SIGINT (fast shutdown) */
  postmasterPidFile: string;
}

/** Names for lab `id` (4 hex digits): interface names must stay within 15 characters. */
export function labNames(id: string): Pick<NetnsState, "netns" | "hostIf" | "nsIf" | "nsHost" | "hostHost"> {
  return { netns: `nshpbs-${id}`, hostIf: `nshpbs${id}h`, nsIf: `nshpbs${id}n`, nsHost: `nshpbs-${id}`,
    hostHost: `nshpbs-${id}-gw` };
}

const tagOf = (id: string): string => `${HOSTS_TAG} ${id}`;

/** /etc/hosts text without the lines lab `id` added. */
export function hostsWithout(text: string, id: string): string {
  const tag = tagOf(id);
  return text.split("\n").filter((l) => !l.endsWith(tag)).join("\n");
}

type HostsEntry = Pick<NetnsState, "id" | "nsAddr" | "hostAddr" | "nsHost" | "hostHost">;

/** /etc/hosts text plus the lab's lines (replacing earlier ones of the same lab). */
export function hostsWith(text: string, s: HostsEntry): string {
  let base = hostsWithout(text, s.id);
  if (base.length > 0 && !base.endsWith("\n")) base += "\n";
  return `${base}${s.nsAddr} ${s.nsHost} ${tagOf(s.id)}\n${s.hostAddr} ${s.hostHost} ${tagOf(s.id)}\n`;
}

/** First 10.231.<third>.0/30 (third from `start`, wrapping in 128..250) that `used` does not mention. */
export function pickSubnet(used: string, start: number): { hostAddr: string; nsAddr: string } {
  for (let i = 0; i < 123; i++) {
    const third = 128 + ((start + i) % 123);
    if (new RegExp(`\\b10\\.231\\.${third}\\.`).test(used)) continue;
    return { hostAddr: `10.231.${third}.1`, nsAddr: `10.231.${third}.2` };
  }
  throw new Error("PBS lab: no free 10.231.128-250.0/30 subnet (each is used by an address, route or /etc/hosts line)");
}

const run = (argv: string[], timeoutMs = 30_000): Promise<RunResult> =>
  runCommand(argv, { env: { PATH: SYS_PATH, LC_ALL: "C" }, timeoutMs });

async function must(argv: string[]): Promise<string> {
  const r = await run(argv);
  if (r.code !== 0) throw new Error(`PBS lab: ${argv.join(" ")} failed (exit ${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** Process start time (field 22 of /proc/<pid>/stat), "" when gone. */
export function processStart(pid: number): string {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "latin1");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? "";
  } catch {
    return "";
  }
}

const stateFile = (id: string): string => path.join(STATE_DIR, `${id}.json`);
const writeState = (s: NetnsState): void => {
  fs.mkdirSync(STATE_DIR, { recursive: true });
  fs.writeFileSync(`${stateFile(s.id)}.tmp`, JSON.stringify(s, null, 1));
  fs.renameSync(`${stateFile(s.id)}.tmp`, stateFile(s.id));
};

/** Rewrite /etc/hosts under the lock: a renamed temp file, or in place if it is a mount point. */
async function editHosts(edit: (text: string) => string): Promise<void> {
  const text = fs.readFileSync(HOSTS_FILE, "utf8");
  const next = edit(text);
  if (next === text) return;
  const tmp = `${HOSTS_FILE}.nsh-${process.pid}`;
  fs.writeFileSync(tmp, next, { mode: fs.statSync(HOSTS_FILE).mode & 0o777 });
  try {
    fs.renameSync(tmp, HOSTS_FILE);
  } catch {
    fs.rmSync(tmp, { force: true });
    fs.writeFileSync(HOSTS_FILE, next); // a bind-mounted /etc/hosts cannot be replaced
  }
}

/** Create the namespace, veth pair, addresses and host names; the state file is written before anything exists. */
export async function netnsUp(id: string, root: string, postmasterPidFile: string): Promise<NetnsState> {
  return withFileLock(HOSTS_LOCK, 120_000, async () => {
    const used = [
      await must(["ip", "-4", "-o", "addr", "show"]),
      await must(["ip", "-4", "route", "show", "table", "all"]),
      fs.readFileSync(HOSTS_FILE, "utf8"),
    ].join("\n");
    const s: NetnsState = {
      id, ownerPid: process.pid, ownerStart: processStart(process.pid), ino: "", root, postmasterPidFile,
      ...labNames(id), ...pickSubnet(used, parseInt(id, 16) % 123),
    };
    writeState(s);
    await must(["ip", "netns", "add", s.netns]);
    s.ino = (await must(["ip", "netns", "exec", s.netns, "readlink", "/proc/self/ns/net"])).trim();
    writeState(s);
    await must(["ip", "link", "add", s.hostIf, "type", "veth", "peer", "name", s.nsIf, "netns", s.netns]);
    await must(["ip", "addr", "add", `${s.hostAddr}/30`, "dev", s.hostIf]);
    await must(["ip", "-n", s.netns, "addr", "add", `${s.nsAddr}/30`, "dev", s.nsIf]);
    await must(["ip", "link", "set", s.hostIf, "up"]);
    await must(["ip", "-n", s.netns, "link", "set", "lo", "up"]);
    await must(["ip", "-n", s.netns, "link", "set", s.nsIf, "up"]);
    await editHosts((t) => hostsWith(t, s));
    return s;
  });
}

/** What a stop signalled, and what survived SIGKILL. */
export interface Stopped {
  killed: number[];
  left: number[];
}

/** PIDs (not zombies) whose network namespace is `ino`. */
export function netnsPids(ino: string): number[] {
  if (!ino) return [];
  const out: number[] = [];
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (fs.readlinkSync(`/proc/${name}/ns/net`) === ino && isAlive(Number(name))) out.push(Number(name));
    } catch {
      // gone or not ours to read
    }
  }
  return out;
}

/** Stop every process in the namespace: the postmaster SIGINT (fast shutdown), the rest SIGTERM, then SIGKILL. */
export async function stopNetnsProcesses(s: NetnsState, graceMs: number): Promise<Stopped> {
  const killed = netnsPids(s.ino);
  let postmaster = 0;
  try {
    postmaster = Number(fs.readFileSync(s.postmasterPidFile, "utf8").split("\n")[0]);
  } catch {
    // no datastore running
  }
  for (const pid of killed) trySignal(pid, pid === postmaster ? "SIGINT" : "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && netnsPids(s.ino).length > 0) await sleep(100);
  for (let round = 0; round < 30; round++) {
    const left = netnsPids(s.ino);
    if (left.length === 0) break;
    for (const pid of left) trySignal(pid, "SIGKILL");
    await sleep(100);
  }
  return { killed, left: netnsPids(s.ino) };
}

/** Stop every process in the namespace, remove veth, namespace, host names, lab dir and state. */
export async function teardown(s: NetnsState, graceMs = 10_000): Promise<Stopped> {
  const { killed, left } = await stopNetnsProcesses(s, graceMs);
  await run(["ip", "link", "del", s.hostIf]); // fails harmlessly when already gone
  if (fs.existsSync(`/run/netns/${s.netns}`)) {
    const ino = await run(["ip", "netns", "exec", s.netns, "readlink", "/proc/self/ns/net"]);
    // the name is ours by id; an inode we never recorded means the state file predates it
    if (!s.ino || ino.stdout.trim() === s.ino) await run(["ip", "netns", "del", s.netns]);
  }
  await withFileLock(HOSTS_LOCK, 120_000, () => editHosts((t) => hostsWithout(t, s.id)));
  if (s.root.startsWith("/") && s.root.length > 5) removeTree(s.root);
  fs.rmSync(stateFile(s.id), { force: true });
  return { killed, left };
}

export function readState(file: string): NetnsState | null {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as NetnsState;
  } catch {
    return null;
  }
}

/** Tear down labs whose owning test process is gone (a killed run); returns their ids. */
export async function cleanupStale(): Promise<string[]> {
  let names: string[] = [];
  try {
    names = fs.readdirSync(STATE_DIR).filter((n) => /^[0-9a-f]+\.json$/.test(n));
  } catch {
    return [];
  }
  const done: string[] = [];
  for (const n of names) {
    const s = readState(path.join(STATE_DIR, n));
    if (!s) continue;
    const ownerLives = isAlive(s.ownerPid) && processStart(s.ownerPid) === s.ownerStart;
    if (ownerLives) continue;
    await teardown(s, 3000);
    done.push(s.id);
  }
  return done;
}

export const stateFileOf = stateFile;

// The watchdog's entry: tear down one lab by its state file (no-op when already gone).
if (import.meta.main) {
  const [cmd, file] = process.argv.slice(2);
  if (cmd !== "cleanup" || !file) {
    console.error("usage: bun test/lab/pbs-netns.ts cleanup <state file>");
    process.exit(2);
  }
  const s = readState(file);
  if (s) await teardown(s, 5000);
  process.exit(0);
}
