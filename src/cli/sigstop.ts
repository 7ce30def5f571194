// `nix-sigstop [options] [--] <nix args>` and `nsh sigstop [options] -- <nix args>`.
import type { CommandDef } from "citty";
import { UsageError, parseSigstopArgs } from "../sigstop/args.ts";
import { VERSION } from "../util/self.ts";

/**
 * citty describes the options for --help; the wrapper parses its argv itself, as nix's must pass
 * untouched. A plain definition (what defineCommand returns): citty is loaded only for --help.
 */
export const sigstopCommand: CommandDef = {
  meta: {
    name: "nix-sigstop",
    version: VERSION,
    description:
      "Run nix, stopping it (SIGSTOP) while it only waits for import-from-derivation builds so the " +
      "kernel can swap its memory out, and continuing it (SIGCONT) when they are done. Options come " +
      "before the nix arguments; everything from the first other argument (or after --) goes to nix " +
      "verbatim. Each option also has an environment variable.",
  },
  args: {
    nix: { type: "string", description: "nix program to run (NIX_SIGSTOP_NIX)", default: "nix" },
    report: { type: "string", description: "write a JSON report to this file at exit (NIX_SIGSTOP_REPORT)" },
    verbose: { type: "boolean", description: "log each stop, continue and build (NIX_SIGSTOP_VERBOSE=1)" },
    quiet: { type: "boolean", description: "no summary line at exit" },
    relay: {
      type: "boolean",
      description:
        "pass nix's daemon traffic through nix-sigstop's relay even when nix could talk to the daemon's " +
        "socket directly (NIX_SIGSTOP_RELAY=1); the relay is always used for a local store",
    },
    "buffer-size": {
      type: "string",
      description:
        "bytes the relay holds per connection and direction before it stops reading (NIX_SIGSTOP_BUFFER)",
      default: "8M",
    },
    "shared-dir": {
      type: "string",
      description:
        "directory where your wrappers on this host take turns resuming: a directory of yours nobody else" +
        " can write, else it is not used (NIX_SIGSTOP_SHARED_DIR; default /run/nix-sigstop as root, else " +
        "/tmp/nix-sigstop-<uid>)",
    },
    "resume-margin": {
      type: "string",
      description:
        "room (RAM + swap) a resumed nix must have to grow by (NIX_SIGSTOP_RESUME_MARGIN)",
      default: "256M",
    },
    "resume-fast-path": {
      type: "string",
      description:
        "below this much in swap a resumption goes ahead without taking turns " +
        "(NIX_SIGSTOP_RESUME_FAST_PATH)",
      default: "64M",
    },
    "resume-max-wait": {
      type: "string",
      description:
        "longest a resumption waits for memory; the biggest waiter goes after 15 s in which nothing on " +
        "the host moved (NIX_SIGSTOP_RESUME_MAX_WAIT)",
      default: "600",
    },
  },
};

export async function runSigstopCli(argv: string[], env: Record<string, string | undefined>): Promise<number> {
  let parsed;
  try {
    parsed = parseSigstopArgs(argv, env);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`nix-sigstop: ${e.message}\n(see nix-sigstop --help)\n`);
    return 2;
  }
  if (parsed.options.help) {
    // citty marks code with backticks (markdown); a terminal shows them literally.
    const { renderUsage } = await import("citty");
    const usage = (await renderUsage(sigstopCommand))
      .replaceAll("`", "")
      .replace(/USAGE nix-sigstop \[OPTIONS\]\s*/, "USAGE nix-sigstop [OPTIONS] [--] <nix arguments>\n\n");
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  if (parsed.options.version) {
    console.log(`nix-sigstop (nsh) ${VERSION}`); // not process.stdout: setting that up costs ~5 ms of CPU
    return 0;
  }
  if (parsed.nixArgs.length === 0) {
    process.stderr.write("nix-sigstop: no nix arguments given, e.g. nix-sigstop eval --expr '1 + 1'\n");
    return 2;
  }
  const [{ makeSigstopLog }, { runWrapper }] = await Promise.all([import("../sigstop/log.ts"), import("../sigstop/wrapper.ts")]);
  return runWrapper(parsed, env, await makeSigstopLog("nix-sigstop", parsed.options));
}
