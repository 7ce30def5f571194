// `nsh hook [<extra>…] <verbosity>`: the build hook, as Nix runs it. Nix ≤ 2.16 runs `nsh <verbosity>`
// (nix.conf `build-hook = /path/to/nsh`), so main.ts also recognises that form; ≥ 2.17 appends the
// verbosity to the setting's words (`build-hook = /path/to/nsh hook`).
import type { CommandDef } from "citty";
import { runHookProcess } from "../hook/runner.ts";
import { isVerbosity } from "../nix/hook-protocol.ts";
import { isTty } from "../sys/libc.ts";
import { VERSION } from "../util/self.ts";

export { runHookProcess };
export const stdinIsTty = () => isTty(0);

/** A plain definition (what defineCommand returns): citty is loaded only for --help. */
export const hookCommand: CommandDef = {
  meta: {
    name: "hook",
    version: VERSION,
    description:
      "Nix's build hook: builds derivations as scheduler jobs (nsh.conf). Set build-hook = /path/to/nsh in " +
      "nix.conf; Nix runs it with its verbosity (0-7) as the last argument and speaks the hook protocol on " +
      "stdin/stderr. Builds nsh does not take go to Nix's own build hook (fallback-build-hook).",
  },
  args: {
    verbosity: { type: "positional", description: "Nix's verbosity, 0 (errors) to 7 (vomit); always the last argument", required: true },
  },
  async run({ rawArgs }) {
    process.exitCode = await runHookCli(rawArgs);
  },
};

/**
 * Nix puts the verbosity last; anything before it (extra words of build-hook) is ignored. Nix 2.8 does
 * not cap it: `-vvvvvvvvv` runs the hook with 9 or more.
 */
export { isVerbosity };

/**
 * How Nix runs us: stdin a pipe, the verbosity last; before it nothing (Nix ≤ 2.16, and ≥ 2.17 with
 * `build-hook = /path/to/nsh`) or the setting's extra words, which must not name a subcommand.
 */
export function isHookInvocation(argv: readonly string[], stdinIsTTY: boolean, subcommands: readonly string[]): boolean {
  // argv[length - 1], not at(-1): a JS-implemented builtin costs ~60 µs of CPU on its first use.
  if (stdinIsTTY || !isVerbosity(argv[argv.length - 1])) return false;
  if (argv.length === 1) return true;
  return !subcommands.includes(argv[0]!) && !argv.some((a) => a === "--help" || a === "-h" || a === "--version");
}

export async function runHookCli(argv: string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    const { renderUsage } = await import("citty");
    process.stdout.write(`${(await renderUsage(hookCommand)).replaceAll("`", "")}\n`);
    return 0;
  }
  if (argv.includes("--version")) {
    console.log(`nsh ${VERSION}`); // not process.stdout: setting that up costs ~5 ms of CPU
    return 0;
  }
  const last = argv[argv.length - 1];
  if (!isVerbosity(last)) {
    const want = "Nix's verbosity (a number: 0 errors … 7 vomit, more with many -v) as the last argument";
    process.stderr.write(`nsh hook: expected ${want}, got '${last ?? ""}' (see nsh hook --help)\n`);
    return 2;
  }
  return runHookProcess(argv);
}
