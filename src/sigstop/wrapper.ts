// The nix-sigstop wrapper: runs nix with itself as build hook, stops nix while it only waits for
// builds, continues it when they are done, and reports at exit. nix reaches the daemon directly
// (a daemon socket, and the kernel lets us watch nix's socket queues) or through the guard's relay.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Subprocess } from "bun";
import type { SigstopLog } from "./log.ts";
import { loadNixConf } from "../config/nixconf.ts";
import { LineSplitter, decodeEvent } from "./events.ts";
import { useSharedDir } from "./shared-dir.ts";
import { nixCommandLine, type ParsedSigstopArgs } from "./args.ts";
import { splitHookSetting } from "./hook-config.ts";
import { formatReport, type SigstopReport } from "./report.ts";
import { createRuntimeDir, writeHookConfig } from "./runtime-dir.ts";
import { Stopper } from "./stopper.ts";
import { resolveUpstream, stateDir, type Upstream } from "./store.ts";
import { GuardLink } from "./guard-link.ts";
import { DaemonQueueWatch, openSockDiag } from "./queue-watch.ts";
import { close as closeFd, connectUnix, listenUnix } from "../sys/sock.ts";
import type { SockDiag } from "../sys/sock-diag.ts";
import { writeAll } from "../nix/hook-child.ts";

type Env = Record<string, string | undefined>;
/** Direct mode: the daemon socket's inode, and the kernel interface that shows nix's queues. */
type Direct = { diag: SockDiag; daemonInode: number };
const FORWARDED = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

export async function runWrapper(args: ParsedSigstopArgs, env: Env, log: SigstopLog): Promise<number> {
  const nixPath = Bun.which(args.options.nix, { PATH: env.PATH ?? "" });
  if (!nixPath) {
    log.error(
      `cannot run '${args.options.nix}': not found on PATH (install Nix, or say which nix to run with --nix PATH)`,
    );
    return 127;
  }
  let conf: Map<string, { value: string }> = new Map();
  try {
    conf = loadNixConf(env).settings;
  } catch (e) {
    log.warn(`cannot read the Nix configuration: ${(e as Error).message}`);
  }
  const store = args.store ?? conf.get("store")?.value ?? env.NIX_REMOTE ?? "auto";
  const upstream = resolveUpstream(store, {
    env,
    stateDirWritable: writable(stateDir(env)),
    socketExists: fs.existsSync,
  });
  const plain = () => runPlain(nixPath, args, log);
  if (upstream.kind === "unsupported") {
    log.warn(`${upstream.reason}; running nix without stopping it`);
    return plain();
  }
  if (upstream.kind === "socket" && !canConnect(upstream.path)) {
    log.warn(
      `cannot reach the Nix daemon socket ${upstream.path}; running nix as is, so it reports the problem itself`,
    );
    return plain();
  }
  const direct = upstream.kind === "socket" && !args.options.relay ? tryDirect(upstream.path, log) : undefined;
  const rd = createRuntimeDir(env);
  try {
    // Direct: the user's own unix:// URI keeps its parameters; `daemon` names the socket we watch.
    const nixStore = direct && upstream.kind === "socket"
      ? (upstream.store.startsWith("unix://") ? upstream.store : `unix://${upstream.path}`)
      : `unix://${rd.socket}`;
    const userHook = args.buildHook ?? conf.get("build-hook")?.value;
    writeHookConfig(rd, {
      fifo: rd.fifo,
      actualHook: userHook ? splitHookSetting(userHook) : undefined,
      hookStore: upstream.kind === "stdio" ? upstream.store : "auto",
      proxyStore: nixStore,
      hookScript: rd.hookScript,
    });
    return await runWrapped(nixPath, args, rd, upstream, nixStore, direct, log);
  } finally {
    rd.remove();
    direct?.diag.close();
  }
}

/** Direct mode if the kernel shows us nix's socket queues (sock_diag); else undefined: relay. */
function tryDirect(daemonSocket: string, log: SigstopLog): Direct | undefined {
  try {
    return openSockDiag(daemonSocket);
  } catch (e) {
    log.debug(`relaying nix's daemon traffic: cannot watch its socket queues (${(e as Error).message})`);
    return undefined;
  }
}

async function runWrapped(
  nixPath: string,
  args: ParsedSigstopArgs,
  rd: ReturnType<typeof createRuntimeDir>,
  upstream: Upstream,
  nixStore: string,
  direct: Direct | undefined,
  log: SigstopLog,
): Promise<number> {
  const opts = args.options;
  const daemonProgram = path.join(path.dirname(fs.realpathSync(nixPath)), "nix-daemon");
  const relay = direct ? undefined : {
    upstream,
    bufferBytes: opts.bufferBytes,
    daemonProgram: fs.existsSync(daemonProgram) ? daemonProgram : "nix-daemon",
  };
  // Relay mode: we bind the socket and hand it to the guard, so nix starts at once instead of after
  // the guard's start-up: its first connection waits in the backlog until the guard accepts it.
  let listenFd: number | undefined;
  try {
    if (relay) listenFd = listenUnix(rd.socket);
  } catch (e) {
    log.error(`cannot make the daemon proxy's socket (${(e as Error).message}); running nix as is`);
    return runPlain(nixPath, args, log);
  }
  // O_RDWR: the FIFO never reports EOF when a notifier closes it.
  const fifoFd = fs.openSync(rd.fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
  let nix: Subprocess;
  try {
    nix = Bun.spawn(nixCommandLine(nixPath, nixStore, rd.hookScript, args.nixArgs), {
      stdio: ["inherit", "inherit", "inherit"],
    });
  } catch (e) {
    log.error(`cannot run ${nixPath}: ${(e as Error).message}`);
    if (listenFd !== undefined) closeFd(listenFd);
    fs.closeSync(fifoFd);
    return 126;
  }
  let guard: GuardLink;
  try {
    guard = GuardLink.start({ runtimeDir: rd.dir, relay }, listenFd);
  } catch (e) {
    if (listenFd !== undefined) closeFd(listenFd);
    nix.kill("SIGKILL");
    await nix.exited;
    fs.closeSync(fifoFd);
    log.error(`the guard process failed to start (${(e as Error).message}); running nix as is`);
    return runPlain(nixPath, args, log);
  }
  // Relay: our copy of the socket keeps nix's first connection waiting (never refused) until the
  // guard serves it. A guard that dies first has served nothing: nix is then killed and run as is.
  // Direct: nix does not need the guard, but without it nix must never be stopped.
  let guardFailed = false;
  let onGuardFailed = () => {};
  void guard.ready.then((ok) => {
    if (listenFd !== undefined) closeFd(listenFd);
    if (ok) return;
    guardFailed = true;
    onGuardFailed();
  });
  await guard.watch(nix.pid);

  const policy = {
    marginBytes: opts.resumeMarginBytes,
    maxWaitMs: opts.resumeMaxWaitMs,
    fastPathBytes: opts.resumeFastPathBytes,
  };
  const stopper = new Stopper(nix.pid, policy, useSharedDir(opts.sharedDir, (m) => log.warn(m)), log);
  onGuardFailed = direct
    ? () => {
        log.warn("the guard process failed to start; nix runs on without being stopped");
        stopper.finish();
      }
    : () => {
        try {
          process.kill(nix.pid, "SIGKILL");
        } catch {}
      };
  if (guardFailed) onGuardFailed();
  const onSignal = (sig: NodeJS.Signals) => {
    // A stopped nix would not act on the signal: continue it first.
    stopper.cont();
    try {
      process.kill(nix.pid, sig);
    } catch {}
  };
  for (const s of FORWARDED) process.on(s, onSignal);
  const watch = direct ? new DaemonQueueWatch(nix.pid, direct.diag, direct.daemonInode, stopper, log) : undefined;
  if (watch) {
    stopper.onStopped = () => watch.kick();
    watch.onBlind = (why) => {
      log.warn(`cannot watch nix's daemon connections any more (${why}); nix runs on without being stopped`);
      stopper.finish();
    };
  } else guard.onPressure = (full) => stopper.onPressure(full);

  const fifoReader = Bun.file(fifoFd).stream().getReader();
  const splitter = new LineSplitter();
  void (async () => {
    for (;;) {
      const r = await fifoReader.read();
      if (r.done) return;
      for (const line of splitter.push(new TextDecoder().decode(r.value))) {
        const e = decodeEvent(line);
        if (typeof e === "string") log.warn(e);
        else stopper.onEvent(e);
      }
    }
  })().catch(() => {});

  const code = await nix.exited;
  if (!direct && guardFailed && nix.signalCode === "SIGKILL") {
    stopper.finish();
    for (const s of FORWARDED) process.off(s, onSignal);
    fifoReader.cancel().catch(() => {});
    fs.closeSync(fifoFd);
    log.error("the daemon proxy failed to start; running nix as is");
    return runPlain(nixPath, args, log);
  }
  // Builds nix waited for end with it: let their notifiers report (their locks are free now).
  for (let i = 0; i < 20 && stopper.tracker.active.size > 0; i++) await Bun.sleep(50);
  stopper.finish();
  watch?.close();
  for (const s of FORWARDED) process.off(s, onSignal);
  const usage = nix.resourceUsage();
  const g = await guard.bye();
  const guardFigures = g ? { peakRssBytes: g.peakRssBytes, cpuSeconds: g.cpuSeconds } : {};
  const proxy: SigstopReport["proxy"] = watch
    ? { mode: "direct", ...watch.stats, ...guardFigures }
    : g?.relay && {
      mode: "relay",
      connections: g.relay.connections,
      peakQueuedBytes: g.relay.peakQueued,
      bytesToClient: g.relay.bytesToClient,
      peakRssBytes: g.peakRssBytes,
      cpuSeconds: g.cpuSeconds,
    };
  fifoReader.cancel().catch(() => {});
  fs.closeSync(fifoFd);

  let exitCode = exitStatus(nix, code);
  // Through a daemon a failed build is exit 1; the local store nix would have used says 100 (§1.5).
  if (upstream.kind === "stdio" && exitCode === 1 && stopper.tracker.failed > 0) exitCode = 100;
  const report: SigstopReport = {
    exitCode,
    ifdBuilds: stopper.tracker.seen.size,
    builds: [...stopper.builds.values()].map(({ t0: _t0, ...b }) => b),
    stops: stopper.stops,
    drainResumes: stopper.drainResumes,
    stoppedSeconds: stopper.stoppedMs / 1000,
    resumeWaitSeconds: stopper.resumeWaitMs / 1000,
    peakRssBytes: Math.max(stopper.peakRss, usage?.maxRSS ?? 0),
    peakSwapBytesWhileStopped: stopper.peakSwap,
    proxy,
  };
  if (!opts.quiet) writeAll(2, `${formatReport(report)}\n`);
  if (opts.report) fs.writeFileSync(opts.report, `${JSON.stringify(report, null, 2)}\n`);
  return report.exitCode;
}

/** nix without the wrapper's machinery, for stores it cannot stand in front of. */
async function runPlain(nixPath: string, args: ParsedSigstopArgs, log: SigstopLog): Promise<number> {
  const extra = [
    ...(args.store ? ["--option", "store", args.store] : []),
    ...(args.buildHook ? ["--option", "build-hook", args.buildHook] : []),
  ];
  let nix: Subprocess;
  try {
    nix = Bun.spawn([nixPath, ...extra, ...args.nixArgs], { stdio: ["inherit", "inherit", "inherit"] });
  } catch (e) {
    log.error(`cannot run ${nixPath}: ${(e as Error).message}`);
    return 126;
  }
  const fwd = (sig: NodeJS.Signals) => nix.kill(sig);
  for (const s of FORWARDED) process.on(s, fwd);
  const code = await nix.exited;
  for (const s of FORWARDED) process.off(s, fwd);
  return exitStatus(nix, code);
}

/** Like a shell: killed by signal N is 128 + N. */
function exitStatus(p: Subprocess, code: number): number {
  const sig = p.signalCode;
  if (sig === null || sig === undefined) return code;
  return 128 + (typeof sig === "number" ? sig : (os.constants.signals[sig] ?? 0));
}

function writable(dir: string): boolean {
  try {
    fs.accessSync(dir, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

function canConnect(socketPath: string): boolean {
  try {
    closeFd(connectUnix(socketPath));
    return true;
  } catch {
    return false;
  }
}
