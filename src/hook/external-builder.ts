// nsh as an `external-builders` program (Nix ≥ 2.32, experimental feature `external-builders`):
// Nix runs `nsh external-builder [--verbosity N] <topTmpDir>/build.json` where its builder would
// run, for every derivation whose system the setting lists and that its build hook declined. The
// build is the hook's (build/*.ts: job, transfer, log, cancel), from a context made of the JSON:
//   - Nix waits for the line "\2" on stderr before it counts anything as build output, so it goes first;
//   - stdout and stderr are the build log (shown live, kept for `nix log`): nsh's messages go there as text;
//   - the outputs are unpacked at the paths Nix names and not registered: Nix holds their locks and
//     registers them itself once we exit 0 (restore-only in remote/import-local.ts);
//   - Nix SIGKILLs our process group on cancel and timeout: the reaper (outside it) cancels the job.
// There is no fallback: a build nsh cannot take fails with the reason.
import fs from "node:fs";
import path from "node:path";
import { type LoadedNshConfig, loadNshConf, nshConfFiles } from "../config/nsh-conf.ts";
import type { Env } from "../config/nixconf.ts";
import { parseDerivation, requiredSystemFeatures } from "../nix/derivation.ts";
import {
  type ExternalBuild,
  buildUserOf,
  buildUserWarning,
  derivationFileName,
  isTheDerivation,
  parseExternalBuild,
  parseExternalBuilderArgs,
} from "../nix/external-build.ts";
import { writeAll } from "../nix/hook-child.ts";
import type { TryRequest } from "../nix/hook-protocol.ts";
import { machineName } from "../schedulers/registry.ts";
import { decide } from "./decision.ts";
import { type BuildExecutor, type SchedulerKind, executors as registry } from "./executor.ts";
import { HookLog, type Level } from "./hook-log.ts";
import { missingSetup, notReadyMessage } from "./readiness.ts";

export interface ExternalBuilderOptions {
  env?: Env;
  /** the build log (Nix's pty): stderr */
  write?: (text: string | Uint8Array) => void;
  loadConf?: (env: Env) => LoadedNshConfig;
  executors?: Partial<Record<SchedulerKind, BuildExecutor | undefined>>;
  terminate?: AbortSignal;
}

/** Why a build nsh would not take fails instead of being built elsewhere. */
const CANNOT_DECLINE =
  "An external builder cannot decline: Nix hands it every build of a system that external-builders lists " +
  "(after any build hook declined it) and builds none of them itself";

/** Not the build's fault nor the cluster's: nsh cannot take this build; the message says why. */
class CannotBuild extends Error {}

/** The derivation Nix is building, found by its file name and its outputs in the store directory. */
export function findDerivation(b: ExternalBuild): string {
  const name = derivationFileName(b);
  if (!name) throw new CannotBuild(`cannot tell which derivation ${b.topTmpDir}/build.json is for (no name)`);
  const candidates = fs.readdirSync(b.realStoreDir).filter((e) => e.endsWith(`-${name}`) && e.length === name.length + 33);
  for (const e of candidates) {
    try {
      if (isTheDerivation(parseDerivation(fs.readFileSync(path.join(b.realStoreDir, e), "utf8")), b)) return `${b.storeDir}/${e}`;
    } catch {
      // unreadable or not a derivation: not this one
    }
  }
  const outs = Object.entries(b.outputs).map(([o, p]) => `${o} = ${p}`).join(", ");
  throw new CannotBuild(
    `no derivation ${name} in ${b.realStoreDir} has the outputs Nix asks for (${outs}); ` +
      "nsh as external builder builds input-addressed and fixed-output derivations, not floating content-addressed ones, " +
      "nor --check or --repair rebuilds (their outputs go to temporary paths)",
  );
}

export async function runExternalBuilder(argv: string[], opts: ExternalBuilderOptions = {}): Promise<number> {
  const env = opts.env ?? process.env;
  const write = opts.write ?? ((t: string | Uint8Array) => writeAll(2, t));
  // Nix reads stderr line by line until "\2" (sandbox set-up messages) and only then streams the log.
  write("\x02\n");
  let verbosity = 3;
  const say = (m: string) => write(`nsh: error: ${m}\n`);
  try {
    const args = parseExternalBuilderArgs(argv);
    verbosity = args.verbosity;
    const buildUser = buildUserOf(process.getuid?.() ?? 0, readOr(`/proc/${process.ppid}/status`));
    if (buildUser !== undefined && verbosity >= 1) write(`nsh: warning: ${buildUserWarning(buildUser)}\n`);
    const build = parseExternalBuild(fs.readFileSync(args.file, "utf8"), args.file);
    const drvPath = findDerivation(build);
    const drv = parseDerivation(fs.readFileSync(path.join(build.realStoreDir, path.basename(drvPath)), "utf8"));

    const loaded = (opts.loadConf ?? loadNshConf)(env);
    for (const w of loaded.warnings) if (verbosity >= 1) write(`nsh: warning: ${w}\n`);
    if (loaded.errors.length) throw new CannotBuild(`nsh.conf has errors: ${loaded.errors.map((e) => e.message).join("; ")}`);
    const conf = loaded.config;
    const unready = missingSetup({ conf, env, files: loaded.files, searched: nshConfFiles(env), readable: canRead });
    if (unready.length) throw new CannotBuild(notReadyMessage(unready));
    const scheduler = conf["job-scheduler"] as SchedulerKind;
    const executor = (opts.executors ?? registry)[scheduler];
    if (!executor) throw new CannotBuild(`this nsh has no executor for job-scheduler '${scheduler}'`);

    const req: TryRequest = { amWilling: true, system: build.system, drvPath, requiredFeatures: requiredSystemFeatures(drv) };
    const d = decide(req, conf);
    if (!d.take) throw new CannotBuild(`not building '${drvPath}' on the cluster: ${d.reason}. ${CANNOT_DECLINE}`);

    // Messages are text in the build log here, not the hook's `@nix` JSON.
    const hookLog = new HookLog(verbosity, (b) => write(plainMessage(String(b))), write);
    const machine = machineName(conf);
    if (verbosity >= 3) write(`nsh: building '${drvPath}' on '${machine}'\n`);
    return await executor({
      req,
      inputs: build.inputPaths,
      wantedOutputs: Object.keys(build.outputs),
      settings: new Map(),
      conf,
      machine,
      verbosity,
      signal: opts.terminate ?? new AbortController().signal,
      env,
      hookLog,
      log: (level, msg) => hookLog.msg(level as Level, msg),
      buildLog: (line) => hookLog.buildLine(line),
      importMethod: "restore-only",
      localStore: build.realStoreDir === build.storeDir ? "local" : `local?real=${encodeURIComponent(build.realStoreDir)}`,
    });
  } catch (e) {
    say((e as Error).message);
    if (env.NSH_DEBUG && !(e instanceof CannotBuild)) write(`${(e as Error).stack}\n`);
    return 1;
  }
}

/** An `@nix {"action":"msg",…}` line as plain text. */
function plainMessage(line: string): string {
  const m = /^@nix (.*)$/s.exec(line.trim());
  if (!m) return line;
  try {
    return `${(JSON.parse(m[1]!) as { msg?: string }).msg ?? ""}\n`;
  } catch {
    return line;
  }
}

const readOr = (file: string, otherwise = "") => {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return otherwise;
  }
};

const canRead = (file: string) => {
  try {
    fs.accessSync(file, fs.constants.R_OK);
    return true;
  } catch {
    return false;
  }
};

/** The process entry: SIGTERM (not sent by Nix ≤ 2.35 to external builders, but by a user) cancels the job. */
export async function runExternalBuilderProcess(argv: string[]): Promise<number> {
  const ac = new AbortController();
  let terms = 0;
  process.on("SIGTERM", () => {
    if (++terms > 1) process.exit(143);
    ac.abort();
  });
  return runExternalBuilder(argv, { terminate: ac.signal });
}
