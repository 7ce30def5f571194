// Pure: the wrapper's own options and the nix command line it runs.
import { parseSizeText } from "../util/size.ts";

export interface SigstopOptions {
  /** The nix program to run (`nix` unless --nix says otherwise). */
  nix: string;
  report?: string;
  verbose: boolean;
  quiet: boolean;
  /** Max bytes the relay holds per direction and connection before it stops reading. */
  bufferBytes: number;
  /** Relay nix's daemon traffic through the guard even where nix could talk to the daemon directly. */
  relay: boolean;
  /** Shared directory where concurrent wrappers coordinate resumption. */
  sharedDir?: string;
  /** Extra memory (bytes) that must stay free beyond what the resumed nix brings back in. */
  resumeMarginBytes: number;
  /** Longest a resumption waits for memory before it goes ahead anyway (ms). */
  resumeMaxWaitMs: number;
  /** Below this much in swap a resumption goes ahead without taking turns. */
  resumeFastPathBytes: number;
  help: boolean;
  version: boolean;
}

export interface ParsedSigstopArgs {
  options: SigstopOptions;
  /** Arguments for nix, verbatim except for the settings the wrapper takes over. */
  nixArgs: string[];
  /** The store the user asked for on the command line, if any. */
  store?: string;
  /** The build hook the user asked for on the command line, if any. */
  buildHook?: string;
}

export class UsageError extends Error {}

const MiB = 1024 * 1024;

export function defaultOptions(env: Record<string, string | undefined> = {}): SigstopOptions {
  return {
    nix: env.NIX_SIGSTOP_NIX || "nix",
    report: env.NIX_SIGSTOP_REPORT || undefined,
    verbose: env.NIX_SIGSTOP_VERBOSE === "1",
    quiet: false,
    bufferBytes: sizeFromEnv(env.NIX_SIGSTOP_BUFFER, 8 * MiB, "NIX_SIGSTOP_BUFFER"),
    relay: env.NIX_SIGSTOP_RELAY === "1",
    sharedDir: env.NIX_SIGSTOP_SHARED_DIR || undefined,
    resumeMarginBytes: sizeFromEnv(env.NIX_SIGSTOP_RESUME_MARGIN, 256 * MiB, "NIX_SIGSTOP_RESUME_MARGIN"),
    resumeMaxWaitMs: Number(env.NIX_SIGSTOP_RESUME_MAX_WAIT ?? 600) * 1000,
    resumeFastPathBytes: sizeFromEnv(env.NIX_SIGSTOP_RESUME_FAST_PATH, 64 * MiB, "NIX_SIGSTOP_RESUME_FAST_PATH"),
    help: false,
    version: false,
  };
}

/** "64M", "1G", "4096" → bytes; anything else is a usage error naming `what`. */
export function parseSize(text: string, what: string): number {
  const n = parseSizeText(text);
  if (n === undefined) throw new UsageError(`${what}: expected a size such as 64M or 1G, got '${text}'`);
  return n;
}

function sizeFromEnv(v: string | undefined, dflt: number, name: string): number {
  return v ? parseSize(v, name) : dflt;
}

const valued: Record<string, (o: SigstopOptions, v: string) => void> = {
  "--nix": (o, v) => (o.nix = v),
  "--report": (o, v) => (o.report = v),
  "--buffer-size": (o, v) => (o.bufferBytes = parseSize(v, "--buffer-size")),
  "--shared-dir": (o, v) => (o.sharedDir = v),
  "--resume-margin": (o, v) => (o.resumeMarginBytes = parseSize(v, "--resume-margin")),
  "--resume-fast-path": (o, v) => (o.resumeFastPathBytes = parseSize(v, "--resume-fast-path")),
  "--resume-max-wait": (o, v) => {
    const s = Number(v);
    if (!Number.isFinite(s) || s < 0) throw new UsageError(`--resume-max-wait: expected seconds, got '${v}'`);
    o.resumeMaxWaitMs = s * 1000;
  },
};

/**
 * The wrapper's options come first; the first argument it does not know (or `--`) starts the
 * nix arguments, which are forwarded verbatim. `--store`/`--build-hook` (also as `--option`) are
 * taken out of them: the wrapper puts its proxy and hook there and honours the user's values.
 */
export function parseSigstopArgs(argv: readonly string[], env: Record<string, string | undefined> = {}): ParsedSigstopArgs {
  const options = defaultOptions(env);
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") {
      i++;
      break;
    }
    const eq = a.indexOf("=");
    const name = a.startsWith("--") && eq > 0 ? a.slice(0, eq) : a;
    const setter = valued[name];
    if (setter) {
      const value = eq > 0 && name !== a ? a.slice(eq + 1) : argv[++i];
      if (value === undefined) throw new UsageError(`${name} needs a value`);
      setter(options, value);
    } else if (a === "--verbose") options.verbose = true;
    else if (a === "--quiet") options.quiet = true;
    else if (a === "--relay") options.relay = true;
    else if ((a === "--help" || a === "-h") && i === 0) options.help = true;
    else if (a === "--version" && i === 0) options.version = true;
    else break;
  }
  return { options, ...takeOverSettings(argv.slice(i)) };
}

/** Removes the user's store and build-hook settings from nix's arguments and returns them. */
export function takeOverSettings(args: readonly string[]): { nixArgs: string[]; store?: string; buildHook?: string } {
  const nixArgs: string[] = [];
  let store: string | undefined;
  let buildHook: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--") {
      nixArgs.push(...args.slice(i));
      break;
    }
    if (a === "--store" && i + 1 < args.length) store = args[++i];
    else if (a === "--build-hook" && i + 1 < args.length) buildHook = args[++i];
    else if (a === "--option" && i + 2 < args.length && (args[i + 1] === "store" || args[i + 1] === "build-hook")) {
      if (args[i + 1] === "store") store = args[i + 2];
      else buildHook = args[i + 2];
      i += 2;
    } else if (a === "--option" && i + 2 < args.length) {
      nixArgs.push(a, args[i + 1]!, args[i + 2]!);
      i += 2;
    } else nixArgs.push(a);
  }
  return { nixArgs, store, buildHook };
}

/** The nix command line: our settings first, so they apply to every nix command and subcommand. */
export function nixCommandLine(nix: string, proxyStore: string, hookPath: string, nixArgs: readonly string[]): string[] {
  return [nix, "--option", "store", proxyStore, "--option", "build-hook", hookPath, ...nixArgs];
}
