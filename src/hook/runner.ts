// The build hook personality: Nix runs `nsh <verbosity>` and talks the hook protocol on fds 0 and 2
// (nix-protocols.md §1). Per `try`, decision.ts says whether the build is the cluster's; if so nsh
// answers `# accept\n<machine>\n`, reads the inputs and wanted outputs and hands the build to the
// scheduler's executor, whose status is our exit status. Everything else goes to Nix's own hook
// (fallback.ts). A broken nsh.conf never breaks a build: it is reported, and every build goes to
// the fallback; so does every build while nsh is not set up (readiness.ts), with one warning.
// EOF while idle means Nix has nothing more for us: exit 0 at once.
import { type LoadedNshConfig, type NshConfig, loadNshConf, nshConfFiles } from "../config/nsh-conf.ts";
import type { Env } from "../config/nixconf.ts";
import { canRead, readReady } from "../sys/file.ts";
import { isTty, lowerPriority } from "../sys/libc.ts";
import { fdOpen, launchedOverCapnp, readSettingsExact, writeAll } from "../nix/hook-child.ts";
import {
  type TryRequest, nixMsg, parseSettings, readAccepted, readTry, verbosityFromArgv,
} from "../nix/hook-protocol.ts";
import type { ByteSource } from "../nix/wire.ts";
import { type Decision, decide } from "./decision.ts";
import { machineName } from "../schedulers/registry.ts";
import { type BuildExecutor, type SchedulerKind, executors as registry } from "./executor.ts";
import { Fallback, fallbackHook } from "./fallback.ts";
import { HookLog, type Level, type Sink } from "./hook-log.ts";
import { missingSetup, notReadyMessage } from "./readiness.ts";

export interface HookIo {
  /** Nix → hook (fd 0) */
  stdin: ByteSource;
  /** hook → Nix (fd 2; Nix made fd 1 the same pipe) */
  toNix: Sink;
  /** the build log (fd 4) */
  toBuildLog: Sink;
  /** hand Nix's fds 4 and 5 on to the fallback hook */
  logFds: boolean;
}

export interface RunHookOptions {
  /** the arguments after the program name; the verbosity is the last */
  argv: string[];
  io?: Partial<HookIo>;
  env?: Env;
  loadConf?: (env: Env) => LoadedNshConfig;
  executors?: Partial<Record<SchedulerKind, BuildExecutor | undefined>>;
  /** the fallback hook (default: fallback-build-hook, else Nix's own) */
  fallbackHook?: string[];
  /** aborted when Nix sends SIGTERM */
  terminate?: AbortSignal;
  /**
   * Called before nsh first waits (for Nix, a child hook or a job): runHookProcess listens for SIGTERM
   * from then on. Setting that up costs start-up CPU and heap blocks the first answer need not pay
   * (bench/README.md "### startup"); before it, nsh has nothing to clean up and a SIGTERM just ends it.
   */
  beforeWait?: () => void;
}

/**
 * Nix's bytes on fd 0: what is there already is read at once (Nix writes the settings, and mostly the
 * first `try`, as it starts the hook), the rest through Bun's stream, set up only when nsh must wait:
 * the first answer then costs no stream set-up (~0.8 ms of CPU, bench/startup.ts).
 */
function stdinSource(beforeWait?: () => void): ByteSource {
  let stream: { read(): Promise<{ done: boolean; value?: Uint8Array }> } | undefined;
  return {
    async read() {
      if (!stream) {
        const ready = readReady(0);
        if (ready === "eof") return { done: true };
        if (ready) return { done: false, value: ready };
        beforeWait?.();
        stream = Bun.stdin.stream().getReader();
      }
      return await stream.read();
    },
  };
}

function realIo(beforeWait?: () => void): HookIo {
  const log4 = fdOpen(4);
  return {
    stdin: stdinSource(beforeWait),
    toNix: (b) => writeAll(2, b),
    toBuildLog: log4 ? (b) => writeAll(4, b) : () => {},
    logFds: true,
  };
}

/** The config, or undefined when nsh.conf has errors (reported); `partial` keeps the values that were valid. */
function loadConfSafely(load: (env: Env) => LoadedNshConfig, env: Env, log: HookLog): { conf?: NshConfig; partial?: NshConfig; files?: string[] } {
  let loaded: LoadedNshConfig;
  try {
    loaded = load(env);
  } catch (e) {
    log.error(`cannot read nsh.conf: ${(e as Error).message}; nsh builds nothing on the cluster, every build goes to Nix's own build hook or is built locally`);
    return {};
  }
  for (const w of loaded.warnings) log.warn(w);
  if (loaded.errors.length === 0) return { conf: loaded.config, partial: loaded.config, files: loaded.files };
  const byPlace = [...loaded.errors].sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line);
  for (const e of byPlace) log.error(e.message);
  log.error("nsh builds nothing on the cluster until nsh.conf is fixed: every build goes to Nix's own build hook or is built locally");
  return { partial: loaded.config };
}

/** Promise.race of two: a JS-implemented builtin costs ~0.1 ms of CPU on its first use in a process. */
const either = <A, B>(a: Promise<A>, b: Promise<B>) =>
  new Promise<A | B>((resolve, reject) => {
    a.then(resolve, reject);
    b.then(resolve, reject);
  });

const describe = (req: TryRequest) => {
  const features = req.requiredFeatures.length ? `, features ${req.requiredFeatures.join(" ")}` : "";
  return `'${req.drvPath}' (system ${req.system}${features}${req.amWilling ? "" : ", no local slot"})`;
};

export async function runHook(opts: RunHookOptions): Promise<number> {
  // Object.assign, not a spread: object spread runs a JS-implemented builtin (first use ~0.1 ms of CPU).
  const io = Object.assign({}, opts.io && "stdin" in opts.io ? {} : realIo(opts.beforeWait), opts.io) as HookIo;
  const env = opts.env ?? process.env;
  const verbosity = verbosityFromArgv(opts.argv);
  const log = new HookLog(verbosity, io.toNix, io.toBuildLog);
  const terminate = opts.terminate ?? new AbortController().signal;

  // Only `builders` until a build is accepted (parseSettings: the rest is not needed for the first answer).
  const start = await readSettingsExact(io.stdin, "builders");
  if (!start) return 0;
  const { reader, blob } = start;
  const allSettings = () => {
    const all = parseSettings(blob);
    return typeof all === "string" ? start.settings : all.settings; // irregular: read field by field, all of them
  };

  const { conf, partial, files } = loadConfSafely(opts.loadConf ?? loadNshConf, env, log);
  const scheduler = conf?.["job-scheduler"] as SchedulerKind | undefined;
  const executor = scheduler ? (opts.executors ?? registry)[scheduler] : undefined;
  // What a submit would lack (no nsh.conf, no slurm-state-dir, no token): then nsh takes nothing.
  const searched = nshConfFiles(env);
  const unready = conf ? missingSetup({ conf, env, files: files ?? [], searched, readable: canRead }) : [];
  let warnedUnready = false;
  const nixOwnHook = !opts.fallbackHook && !(partial?.["fallback-build-hook"] ?? "").trim();
  const fallback = new Fallback({
    hook: opts.fallbackHook ?? (() => fallbackHook(partial)),
    noMachines: nixOwnHook && start.settings.get("builders")?.trim() === "",
    verbosity,
    settingsBlob: blob,
    toNix: io.toNix,
    log,
    neverTakes: !executor || unready.length > 0,
    logFds: io.logFds,
    env,
    beforeStart: opts.beforeWait,
  });

  let phase: "idle" | "fallback" | "building" = "idle";
  const terminated = new Promise<undefined>((resolve) => {
    const onTerm = () => {
      if (phase === "fallback") void fallback.terminate();
      resolve(undefined);
    };
    if (terminate.aborted) onTerm();
    else terminate.addEventListener("abort", onTerm, { once: true });
  });

  for (;;) {
    phase = "idle";
    const req = await either(readTry(reader), terminated);
    if (!req) {
      // EOF: Nix is done with this hook (it kills the process group right after); SIGTERM: likewise.
      await fallback.close();
      return 0;
    }
    log.debug(`asked about ${describe(req)}`);
    let d: Decision = conf ? decide(req, conf) : { take: false, reason: "nsh.conf has errors" };
    if (d.take && !executor) {
      d = { take: false, reason: `this nsh has no executor for job-scheduler '${scheduler}'` };
      log.warn(`'${req.drvPath}' is for the cluster, but ${d.reason}; handing it to Nix's own build hook`);
    } else if (d.take && unready.length > 0) {
      d = { take: false, reason: "nsh is not set up" };
      if (!warnedUnready) log.warn(notReadyMessage(unready)); // once per hook, not per try
      warnedUnready = true;
    } else if (!d.take && conf) log.talkative(`not building '${req.drvPath}' on the cluster: ${d.reason}; handing it to Nix's own build hook`);

    // At max-queued-jobs: Nix asks again later (loaded only when a cap is set).
    const cap = conf?.["max-queued-jobs"] ?? 0;
    if (d.take && cap > 0) opts.beforeWait?.();
    const atCap = d.take && conf && cap > 0 && (await (await import("./queue-cap.ts")).queuedAtCap(conf, env));
    if (atCap) {
      log.talkative(`postponing '${req.drvPath}': ${atCap} of this machine's nsh jobs are queued (max-queued-jobs = ${cap})`);
      io.toNix("# postpone\n");
      continue;
    }
    if (d.take && executor && conf) {
      await fallback.close();
      const machine = machineName(conf);
      io.toNix(`# accept\n${machine}\n`); // one write: Nix reads the machine line right after the reply
      const acceptedAt = Date.now();
      // Nix waits for each new hook's answer before it starts the next build: those answers are the
      // wide graph's critical path, this build's copies and waits are not.
      lowerPriority(conf["hook-niceness"]);
      opts.beforeWait?.();
      const { inputs, wantedOutputs } = await readAccepted(reader);
      phase = "building";
      try {
        const settings = allSettings();
        const ctx = {
          req, inputs, wantedOutputs, settings, conf, machine, verbosity, signal: terminate, env, hookLog: log,
          acceptedAt,
        };
        return await executor({ ...ctx, log: (level, msg) => log.msg(level as Level, msg), buildLog: (line) => log.buildLine(line) });
      } catch (e) {
        log.error(`building '${req.drvPath}' on '${machine}' failed: ${(e as Error).message}`);
        return 1;
      }
    }
    phase = "fallback";
    const r = await fallback.offer(req, reader);
    if (r.kind === "built") return r.status;
  }
}

/** The process entry: real fds, and SIGTERM (Nix ≥ 2.35, 500 ms before SIGKILL) lets a running build clean up. */
export async function runHookProcess(argv: string[]): Promise<number> {
  const ac = new AbortController();
  let terms = 0;
  let listening = false;
  const beforeWait = () => {
    if (listening) return;
    listening = true;
    process.on("SIGTERM", () => {
      if (++terms > 1) process.exit(143);
      ac.abort();
    });
  };
  // stdin is a pipe from Nix; a TTY here means someone typed `nsh hook 3` by hand.
  if (isTty(0)) {
    process.stderr.write("nsh hook: this is Nix's build hook; set build-hook = <path to nsh> in nix.conf\n");
    return 2;
  }
  if (launchedOverCapnp()) {
    process.stderr.write(
      "nsh: error: this Nix runs its build hook over Cap'n Proto RPC (Lix 2.94 or later), which nsh does not speak yet; " +
        "nsh works as build hook with Nix 2.8 to 2.35 and Lix up to 2.93. Remove build-hook = nsh (builds then stay local or use builders)\n",
    );
    return 1;
  }
  try {
    return await runHook({ argv, terminate: ac.signal, beforeWait });
  } catch (e) {
    // Plain stderr lines never reach a daemon's client: say it as Nix's own message.
    writeAll(2, nixMsg(0, `nsh: error: ${(e as Error).message}`));
    if (process.env.NSH_DEBUG) writeAll(2, nixMsg(0, `${(e as Error).stack}`));
    return 1;
  }
}
