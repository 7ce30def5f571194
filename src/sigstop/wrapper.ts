// The nix-sigstop wrapper: runs nix behind a daemon proxy with itself as build hook, stops nix while
// it only waits for builds, continues it when they are done, and reports at exit.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Subprocess } from "bun";
import type { ConsolaInstance } from "consola";
import { loadNixConf } from "../config/nixconf.ts";
import { LineSplitter, decodeEvent } from "./events.ts";
import { defaultSharedDir } from "./admission.ts";
import { nixCommandLine, type ParsedSigstopArgs } from "./args.ts";
import { splitHookSetting } from "./hook-config.ts";
import { formatReport, type SigstopReport } from "./report.ts";
import { createRuntimeDir, writeHookConfig } from "./runtime-dir.ts";
import { Stopper } from "./stopper.ts";
import { resolveUpstream, stateDir, type Upstream } from "./store.ts";
import { GuardLink } from "./guard-link.ts";

type Env = Record<string, string | undefined>;
const FORWARDED = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

export async function runWrapper(args: ParsedSigstopArgs, env: Env, log: ConsolaInstance): Promise<number> {
  const nixPath = Bun.which(args.options.nix, { PATH: env.PATH ?? "" });
  if (!nixPath) {
    log.error(`cannot run '${args.options.nix}': not found on PATH (install Nix, or say which nix to run with --nix PATH)`);
    return 127;
  }
  let conf: Map<string, { value: string }> = new Map();
  try {
    conf = loadNixConf(env).settings;
  } catch (e) {
    log.warn(`cannot read the Nix configuration: ${(e as Error).message}`);
  }
  const store = args.store ?? conf.get("store")?.value ?? env.NIX_REMOTE ?? "auto";
  const upstream = resolveUpstream(store, { env, stateDirWritable: writable(stateDir(env)), socketExists: fs.existsSync });
  const plain = () => runPlain(nixPath, args, log);
  if (upstream.kind === "unsupported") {
    log.warn(`${upstream.reason}; running nix without stopping it`);
    return plain();
  }
  if (upstream.kind === "socket" && !(await canConnect(upstream.path))) {
    log.warn(`cannot reach the Nix daemon socket ${upstream.path}; running nix as is, so it reports the problem itself`);
    return plain();
  }
  const rd = createRuntimeDir(env);
  try {
    const userHook = args.buildHook ?? conf.get("build-hook")?.value;
    writeHookConfig(rd, {
      fifo: rd.fifo,
      actualHook: userHook ? splitHookSetting(userHook) : undefined,
      hookStore: upstream.kind === "stdio" ? upstream.store : "auto",
      proxyStore: `unix://${rd.socket}`,
      hookScript: rd.hookScript,
    });
    return await runWrapped(nixPath, args, rd, upstream, log);
  } finally {
    rd.remove();
  }
}

async function runWrapped(nixPath: string, args: ParsedSigstopArgs, rd: ReturnType<typeof createRuntimeDir>, upstream: Upstream, log: ConsolaInstance): Promise<number> {
  const opts = args.options;
  const daemonProgram = path.join(path.dirname(fs.realpathSync(nixPath)), "nix-daemon");
  const guard = await GuardLink.start({ listen: rd.socket, upstream, bufferBytes: opts.bufferBytes, daemonProgram: fs.existsSync(daemonProgram) ? daemonProgram : "nix-daemon" });
  if (!guard) {
    log.error("the daemon proxy failed to start; running nix as is");
    return runPlain(nixPath, args, log);
  }
  // O_RDWR: the FIFO never reports EOF when a notifier closes it.
  const fifoFd = fs.openSync(rd.fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
  let nix: Subprocess;
  try {
    nix = Bun.spawn(nixCommandLine(nixPath, `unix://${rd.socket}`, rd.hookScript, args.nixArgs), { stdio: ["inherit", "inherit", "inherit"] });
  } catch (e) {
    log.error(`cannot run ${nixPath}: ${(e as Error).message}`);
    guard.kill();
    return 126;
  }
  await guard.watch(nix.pid);

  const stopper = new Stopper(nix.pid, { marginBytes: opts.resumeMarginBytes, maxWaitMs: opts.resumeMaxWaitMs, fastPathBytes: opts.resumeFastPathBytes }, opts.sharedDir ?? defaultSharedDir(), log);
  const onSignal = (sig: NodeJS.Signals) => {
    // A stopped nix would not act on the signal: continue it first.
    stopper.cont();
    try {
      process.kill(nix.pid, sig);
    } catch {}
  };
  for (const s of FORWARDED) process.on(s, onSignal);
  guard.onPressure = (full) => stopper.onPressure(full);

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
  // Builds nix waited for end with it: let their notifiers report (their locks are free now).
  for (let i = 0; i < 20 && stopper.tracker.active.size > 0; i++) await Bun.sleep(50);
  stopper.finish();
  for (const s of FORWARDED) process.off(s, onSignal);
  const usage = nix.resourceUsage();
  const proxy = await guard.bye();
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
  if (!opts.quiet) process.stderr.write(`${formatReport(report)}\n`);
  if (opts.report) fs.writeFileSync(opts.report, `${JSON.stringify(report, null, 2)}\n`);
  return report.exitCode;
}

/** nix without the wrapper's machinery, for stores it cannot stand in front of. */
async function runPlain(nixPath: string, args: ParsedSigstopArgs, log: ConsolaInstance): Promise<number> {
  const extra = [...(args.store ? ["--option", "store", args.store] : []), ...(args.buildHook ? ["--option", "build-hook", args.buildHook] : [])];
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

async function canConnect(socketPath: string): Promise<boolean> {
  try {
    const s = await Bun.connect({ unix: socketPath, socket: { data() {} } });
    s.end();
    return true;
  } catch {
    return false;
  }
}
