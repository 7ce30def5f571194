// Lab watchdog: a detached helper that outlives the test process.
//
// Why: under `bun test` (1.4.5) neither process "exit" nor "beforeExit"
// handlers run when the runner finishes, and a SIGKILLed runner runs nothing.
// The parent keeps our stdin pipe open and sends JSON lines registering what it
// started; when the pipe reaches EOF (parent gone, for any reason) we stop
// whatever is still registered, by PID, and remove registered directories.
//
// Messages: {"op":"group"|"ungroup","pid":n} {"op":"root"|"unroot","root":s,"rm":b}
// {"op":"cleanup","id":s,"argv":[...]} {"op":"uncleanup","id":s}: a command run last (e.g. a
// lab whose daemons live in a network namespace and daemonize: test/lab/pbs-netns.ts).
//           {"op":"rootns","root":s,"pid":n,"ns":"mnt:[n]"} (pid's mount namespace counts as root's marker;
//           held here too, and only if pid is still in that namespace)
import { spawnSync } from "node:child_process";
import { findByMarker, holdRootNamespace, isAlive, killGroup, releaseRootNamespaces, removeTree, sleep, trySignal } from "./proc.ts";

const groups = new Set<number>();
const roots = new Map<string, boolean>();
const cleanups = new Map<string, string[]>();

function apply(line: string): void {
  let msg: { op?: string; pid?: number; root?: string; rm?: boolean; id?: string; argv?: string[]; ns?: string };
  try {
    msg = JSON.parse(line) as typeof msg;
  } catch {
    return;
  }
  if (msg.op === "group" && typeof msg.pid === "number") groups.add(msg.pid);
  else if (msg.op === "ungroup" && typeof msg.pid === "number") groups.delete(msg.pid);
  else if (msg.op === "root" && typeof msg.root === "string") roots.set(msg.root, msg.rm === true);
  else if (msg.op === "unroot" && typeof msg.root === "string") {
    roots.delete(msg.root);
    releaseRootNamespaces(msg.root);
  } else if (msg.op === "rootns" && typeof msg.root === "string" && typeof msg.pid === "number") {
    holdRootNamespace(msg.root, msg.pid, typeof msg.ns === "string" ? msg.ns : "");
  } else if (msg.op === "cleanup" && typeof msg.id === "string" && Array.isArray(msg.argv)) {
    cleanups.set(msg.id, msg.argv);
  } else if (msg.op === "uncleanup" && typeof msg.id === "string") cleanups.delete(msg.id);
}

async function reap(): Promise<void> {
  for (const pid of groups) killGroup(pid, "SIGTERM");
  for (const root of roots.keys()) for (const pid of findByMarker(root)) trySignal(pid, "SIGTERM");
  await sleep(500);
  for (let round = 0; round < 40; round++) {
    let left = 0;
    for (const pid of groups) {
      if (isAlive(pid)) {
        killGroup(pid, "SIGKILL");
        left++;
      }
    }
    for (const root of roots.keys()) {
      for (const pid of findByMarker(root)) {
        trySignal(pid, "SIGKILL");
        left++;
      }
    }
    if (left === 0) break;
    await sleep(50);
  }
  for (const [root, rm] of roots) if (rm) removeTree(root);
  for (const argv of cleanups.values()) {
    if (argv.length > 0) spawnSync(argv[0]!, argv.slice(1), { stdio: "ignore", timeout: 120_000 });
  }
}

// Only the parent's pipe matters; terminal signals must not stop the reaping.
for (const sig of ["SIGINT", "SIGHUP", "SIGTERM"] as const) process.on(sig, () => undefined);

let buf = "";
const decoder = new TextDecoder();
for await (const chunk of Bun.stdin.stream()) {
  buf += decoder.decode(chunk, { stream: true });
  let nl: number;
  while ((nl = buf.indexOf("\n")) >= 0) {
    apply(buf.slice(0, nl));
    buf = buf.slice(nl + 1);
  }
}
await reap();
process.exit(0);
