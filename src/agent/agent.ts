// The job's agent: nsh itself, run by the job script on the node. It waits for the hook on a unix
// socket in the job directory (no polling: the allocation idles until the hook connects), runs
// `nix-store --serve --write` inside the job for the hook's serve sessions, streams their stderr
// (the build log) to the hook, and stays until the hook says it has the outputs. It checks first
// that it can run nix-store (remote-nix-bin-dir, else the job's PATH) while it already listens, and
// answers every log client with that status, so a node without Nix fails the build at once, saying
// so; when it can, one `nix-store --serve` starts at once for the hook's first serve session. If the hook goes away
// (its connections close and none comes back), it ends the job rather than hold the allocation.
// With collect-garbage it collects after its goodbye: the hook need not wait for that.
// As a pilot (pilot-idle-time) it says goodbye to each build's hook but stays, up to its idle time,
// for the next hook (which took it from the state database); a hook gone mid-build still ends it.
import type { Socket, Subprocess } from "bun";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { AGENT_LOG, AGENT_SOCKET, parseHello, statusLine, type AgentOptions } from "./protocol.ts";
import { sendStartNotice } from "./start-notice.ts";
import { knowsExternalBuilders, parseNixVersion } from "../nix/version.ts";
import { fileIdentity, fileMemo, type Memo } from "../state/memo.ts";

interface Client {
  mode?: "serve" | "log";
  hello: Uint8Array;
  /** A serve session's bytes that came before its nix-store was attached (the check still ran). */
  early?: Uint8Array[];
  /** The client left (a serve session that leaves before the check ended gets no nix-store). */
  gone?: boolean;
  child?: Subprocess<"pipe", "pipe", "pipe">;
  /** Resolved when the socket can take more (nix-store's output waits for it). */
  drained?: PromiseWithResolvers<void>;
  /** Bytes written to nix-store's stdin and not yet flushed (the hook's uploads wait for them). */
  pending: number;
}

const HIGH_WATER = 4 << 20;

/** Writes all of `chunk`, waiting for the socket to drain when it is full: bounded memory. */
async function writeAll(s: Socket<Client>, chunk: Uint8Array): Promise<void> {
  let off = 0;
  while (off < chunk.length) {
    const n = s.write(chunk.subarray(off));
    off += Math.max(0, n);
    if (off < chunk.length) {
      s.data.drained = Promise.withResolvers<void>();
      await s.data.drained.promise;
    }
  }
}

/** Feeds nix-store's stdin; above the high-water mark the hook's socket pauses until it is flushed. */
function feed(s: Socket<Client>, child: Subprocess<"pipe", "pipe", "pipe">, data: Uint8Array): void {
  child.stdin.write(data);
  s.data.pending += data.length;
  if (s.data.pending < HIGH_WATER) return;
  s.pause();
  void Promise.resolve(child.stdin.flush()).then(() => {
    s.data.pending = 0;
    s.resume();
  });
}

/**
 * Why this job cannot run nix-store (undefined when it can): the one in remote-nix-bin-dir, else
 * one on the job's PATH. Said to the hook first thing, so a cluster without Nix on the compute
 * nodes' PATH is one clear message instead of a serve protocol that never starts.
 */
export async function nixStoreProblem(
  nixStore: string, nixBinDir: string | undefined, env: Record<string, string | undefined> = process.env,
): Promise<string | undefined> {
  return (await checkNixStore(nixStore, nixBinDir, env)).problem;
}

/** How long agents trust the version line a nix-store binary gave (it is the same file). */
const NIX_VERSION_MEMO_MS = 24 * 3600_000;

/** The cluster state directory's `jobs` directory above a job's (or a slot's) directory; undefined if none. */
export function jobsDirOf(jobDir: string): string | undefined {
  for (let d = path.dirname(jobDir); d !== path.dirname(d); d = path.dirname(d)) {
    if (path.basename(d) === "jobs") return d;
  }
  return undefined;
}

/**
 * nixStoreProblem's check, with the `--version` line nix-store answered when it works. With a memo,
 * a binary (by path, inode, size, mtime) that answered before is not run again: on a busy node the
 * run takes ~0.5 s, and each slot's agent of each job waits for it before its hello.
 */
export async function checkNixStore(
  nixStore: string,
  nixBinDir: string | undefined,
  env: Record<string, string | undefined> = process.env,
  memo?: Memo<string>,
): Promise<{ problem?: string; version?: string }> {
  const node = os.hostname();
  const fix = "set remote-nix-bin-dir in nsh.conf to the directory that holds nix-store on the cluster (a shared Nix installation)";
  let exe: string | null = null;
  if (nixBinDir) {
    try {
      fs.accessSync(nixStore, fs.constants.X_OK);
      exe = nixStore;
    } catch {
      const where = `(remote-nix-bin-dir = ${nixBinDir})`;
      return { problem: `there is no executable ${nixStore} on node ${node} ${where}: ${fix}` };
    }
  } else {
    exe = Bun.which("nix-store", { PATH: env.PATH ?? "" });
    if (!exe) return { problem: `nix-store is not on the job's PATH on node ${node} (PATH=${env.PATH ?? ""}): ${fix}` };
  }
  const key = memo && fileIdentity(exe);
  const known = key ? memo?.get(key) : undefined;
  if (known !== undefined) return { version: known };
  try {
    // Not spawnSync: the agent listens (and the hook connects) meanwhile.
    const r = Bun.spawn([exe, "--version"], { stdout: "pipe", stderr: "pipe" });
    const [exitCode, stdout, stderr] = await Promise.all([
      r.exited, new Response(r.stdout).text(), new Response(r.stderr).text(),
    ]);
    if (exitCode === 0) {
      const version = stdout.trim().split("\n")[0] ?? "";
      if (key) memo?.set(key, version);
      return { version };
    }
    const why = stderr.trim().split("\n").pop() ?? "";
    return { problem: `${exe} --version failed on node ${node} (exit ${exitCode}${why ? `: ${why}` : ""}): ${fix}` };
  } catch (e) {
    return { problem: `cannot run ${exe} on node ${node} (${(e as Error).message}): ${fix}` };
  }
}

export async function runAgent(o: AgentOptions): Promise<number> {
  // The job may start before the hook's ssh check has made the directory (job-plan.ts), and the
  // job's PATH may hold no mkdir: the agent makes it.
  fs.mkdirSync(o.jobDir, { recursive: true, mode: 0o700 });
  process.chdir(o.jobDir);
  const sockPath = path.join(o.jobDir, AGENT_SOCKET);
  const logFile = fs.openSync(path.join(o.jobDir, AGENT_LOG), "a");
  const logs = new Set<Socket<Client>>();
  const children = new Set<Subprocess>();
  const finished = Promise.withResolvers<number>();
  let open = 0;
  let everConnected = false;
  let lonelySince = Date.now();
  // A build's hook came and has not said "done" (a pilot ends only when none is under way).
  let building = false;
  const pilot = o.pilotIdleMs > 0;
  const nixStore = o.nixBinDir ? path.join(o.nixBinDir, "nix-store") : "nix-store";
  // nix-store's own children (builders, hooks) find the same Nix first.
  const childEnv = o.nixBinDir ? { ...process.env, PATH: `${o.nixBinDir}:${process.env.PATH ?? ""}` } : process.env;
  // The check runs while the agent already listens; clients wait for its verdict. Then one
  // `nix-store --serve` starts (its store takes ~40 ms to open) before the hook connects over ssh;
  // its options depend on the version the check saw.
  const memoDir = jobsDirOf(o.jobDir);
  const memo = memoDir ? fileMemo<string>(memoDir, "nix-version", NIX_VERSION_MEMO_MS) : undefined;
  const checked: Promise<{ problem?: string; version?: string }> =
    checkNixStore(nixStore, o.nixBinDir, process.env, memo)
    .catch((e: Error) => ({ problem: `cannot check ${nixStore}: ${e.message}` }));
  let problem: string | undefined;
  let noExternalBuilders = false;
  let spare: Subprocess<"pipe", "pipe", "pipe"> | undefined;
  const ready = checked.then((c) => {
    problem = c.problem;
    if (problem) return void fs.writeSync(logFile, `nsh agent: error: ${problem}\n`);
    try {
      noExternalBuilders = knowsExternalBuilders(parseNixVersion(c.version ?? ""));
    } catch {} // an unknown version line: a Nix without the setting
    try {
      spare = spawnServe();
    } catch {} // said when a session asks for it
  });
  const say = (line: string) => {
    fs.writeSync(logFile, line);
    for (const l of logs) l.write(line);
  };

  fs.rmSync(sockPath, { force: true });
  const server = Bun.listen<Client>({
    unix: sockPath,
    socket: {
      open(s) {
        s.data = { hello: new Uint8Array(0), pending: 0 };
        open++;
        everConnected = true;
      },
      data(s, data) {
        const c = s.data;
        if (c.mode === "serve") return void (c.child ? feed(s, c.child, data) : c.early?.push(data));
        if (c.mode === "log") {
          if (new TextDecoder().decode(data).includes("done")) {
            if (pilot) buildDone();
            else finished.resolve(0);
          }
          return;
        }
        // The request line may share a packet with the first serve protocol bytes: split as bytes.
        const buf = new Uint8Array(c.hello.length + data.length);
        buf.set(c.hello);
        buf.set(data, c.hello.length);
        const nl = buf.indexOf(10);
        if (nl < 0) return void (c.hello = buf);
        const line = new TextDecoder().decode(buf.subarray(0, nl));
        const mode = parseHello(line);
        const rest = buf.slice(nl + 1);
        if (!mode) return void s.end(`nsh agent: unknown request '${line}'\n`);
        c.mode = mode;
        fs.writeSync(logFile, `nsh agent: ${mode} client at ${Date.now()}\n`);
        if (mode === "log") {
          building = true;
          void ready.then(() => {
            s.write(statusLine(problem));
            logs.add(s);
          });
          return;
        }
        c.early = rest.length ? [rest] : [];
        void ready.then(() => {
          if (c.gone) return;
          if (problem) return void s.end();
          try {
            c.child = startServe(s, c.early ?? []);
            c.early = undefined;
          } catch (e) {
            say(`nsh agent: error: cannot start ${nixStore} on ${os.hostname()}: ${(e as Error).message}\n`);
            s.end();
          }
        });
      },
      drain(s) {
        s.data.drained?.resolve();
      },
      close(s) {
        s.data.gone = true;
        s.data.drained?.resolve();
        open--;
        if (open === 0) lonelySince = Date.now();
        logs.delete(s);
        if (s.data.child) void s.data.child.stdin.end();
      },
      error() {},
    },
  });
  // Listening: the hook waiting for this job may come now (it asks the scheduler on this notice).
  sendStartNotice(process.env);

  function spawnServe(): Subprocess<"pipe", "pipe", "pipe"> {
    // nsh accepted the build because the cluster offers its features: the node's Nix must agree.
    const features = o.systemFeatures.length ? ["--option", "extra-system-features", o.systemFeatures.join(" ")] : [];
    const noExternal = noExternalBuilders ? ["--option", "external-builders", "[]"] : [];
    const store = o.remoteStore ? ["--store", o.remoteStore] : [];
    const argv = [nixStore, "--serve", "--write", ...store, ...features, ...noExternal];
    const child = Bun.spawn(argv, { stdin: "pipe", stdout: "pipe", stderr: "pipe", env: childEnv });
    children.add(child);
    void child.exited.then(() => children.delete(child));
    return child;
  }

  /** Joins a serve client to the spare nix-store (the first session) or a new one. */
  function startServe(s: Socket<Client>, early: readonly Uint8Array[]): Subprocess<"pipe", "pipe", "pipe"> {
    let child = spare;
    spare = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) child = spawnServe();
    // A pilot's next build finds its nix-store open already (it takes ~40 ms, 300 ms on a busy node).
    if (pilot) {
      try {
        spare = spawnServe();
      } catch {} // said when a session asks for it
    }
    for (const chunk of early) child.stdin.write(chunk);
    void (async () => {
      for await (const chunk of child.stdout) await writeAll(s, chunk);
      s.end();
    })().catch(() => s.end());
    void (async () => {
      let partial = "";
      for await (const chunk of child.stderr) {
        const lines = (partial + new TextDecoder().decode(chunk)).split("\n");
        partial = lines.pop() ?? "";
        for (const l of lines) say(`${l}\n`);
      }
      if (partial) say(`${partial}\n`);
    })().catch(() => {});
    return child;
  }

  /** A pilot's build is over: its hook may go; a fresh nix-store waits for the next build's. */
  function buildDone(): void {
    building = false;
    fs.writeSync(logFile, `nsh agent: build done at ${Date.now()}; idle for up to ${o.pilotIdleMs / 1000} s\n`);
    for (const l of logs) l.end("bye\n");
    logs.clear();
    if (!problem && (!spare || spare.exitCode !== null)) {
      try {
        spare = spawnServe();
      } catch {} // said when a session asks for it
    }
  }

  // The hook is gone when nobody has been connected for a while after it came, or it never came.
  // When the process started and when it listened (epoch ms): where a job's start-up time goes.
  fs.writeSync(logFile, `nsh agent: listening (process start ${Math.round(performance.timeOrigin)}, listening ${Date.now()})\n`);
  const watch = setInterval(() => {
    const quiet = Date.now() - lonelySince;
    if (open > 0) return;
    if (pilot && everConnected && !building && quiet > o.pilotIdleMs) finished.resolve(5);
    else if ((pilot ? building : everConnected) && quiet > o.orphanGraceMs) finished.resolve(3);
    else if (!everConnected && quiet > o.firstContactTimeoutMs) finished.resolve(4);
  }, 1000);
  const onSignal = () => finished.resolve(143);
  process.on("SIGTERM", onSignal);

  const code = await finished.promise;
  clearInterval(watch);
  for (const c of children) c.kill("SIGTERM");
  if (code === 3) fs.writeSync(logFile, "nsh agent: the hook went away; ending the job\n");
  if (code === 4) fs.writeSync(logFile, "nsh agent: no hook connected in time; ending the job\n");
  if (code === 5) fs.writeSync(logFile, "nsh agent: idle for pilot-idle-time; ending the job\n");
  // The hook may go now: whatever follows (collecting garbage) is the job's own business.
  for (const l of logs) l.end("bye\n");
  server.stop(true);
  fs.rmSync(sockPath, { force: true });
  if ((code === 0 || code === 5) && o.collectGarbage) {
    // A serve session still alive holds temporary roots on what it built: let it end first.
    await Promise.race([Promise.allSettled([...children].map((c) => c.exited)), Bun.sleep(5000)]);
    const gc = Bun.spawn([nixStore, "--gc", ...(o.remoteStore ? ["--store", o.remoteStore] : [])], { stdout: "ignore", stderr: "pipe", env: childEnv });
    const [status, err] = await Promise.all([gc.exited, new Response(gc.stderr).text()]);
    fs.writeSync(logFile, `nsh agent: collect-garbage: exit ${status}${status !== 0 ? `: ${err.trim().split("\n").slice(-3).join(" / ")}` : ""}\n`);
  }
  fs.closeSync(logFile);
  return code === 5 ? 0 : code;
}
