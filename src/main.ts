// Entry point. The name nsh is invoked by picks its personality (multi-call, like busybox). Each
// personality is imported when chosen: the build hook runs once per build and must start fast.
// Nothing here loads node:tty, node:path or process.stdout/stderr: in a compiled Bun each costs
// about as much CPU as a whole hello world (bench/startup.ts; isatty comes from libc instead).
import { VERSION } from "./util/self.ts";

// One or two ASCII digits (hook-protocol.ts isVerbosity, copied: that module is not loaded for --version), without a
// regex: compiling the first one costs ~70 µs of CPU.
const digit = (c: number) => c >= 48 && c <= 57;
const isVerbosity = (s: string | undefined) =>
  s !== undefined && (s.length === 1 || s.length === 2) && digit(s.charCodeAt(0)) && digit(s.charCodeAt(s.length - 1));

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  if (argv[0]?.startsWith("__")) {
    const { internalCommands } = await import("./cli/internal.ts");
    const internal = internalCommands[argv[0]];
    if (internal) return internal(argv.slice(1));
  }
  const personality = process.argv0.slice(process.argv0.lastIndexOf("/") + 1);
  if (personality === "nix-sigstop" || argv[0] === "sigstop") {
    const { runSigstopCli } = await import("./cli/sigstop.ts");
    return personality === "nix-sigstop" ? runSigstopCli(argv, process.env) : runSigstopCli(argv.slice(1), process.env);
  }
  // Nix ≥ 2.32 `external-builders` program: `nsh external-builder [--verbosity N] <build.json>`.
  if (argv[0] === "external-builder") return (await import("./hook/external-builder.ts")).runExternalBuilderProcess(argv.slice(1));
  if (argv[0] === "hook") return (await import("./cli/hook.ts")).runHookCli(argv.slice(1));
  // Nix runs build-hook as `<hook> [<extra args>…] <verbosity>` with stdin a pipe (Nix ≤ 2.16 and
  // a plain `build-hook = /path/to/nsh`: the verbosity alone).
  // One import brings the check and the runner: each dynamic import costs start-up CPU (bench/startup.ts).
  const hook = isVerbosity(argv[argv.length - 1]) ? await import("./cli/hook.ts") : undefined;
  if (hook && !hook.stdinIsTty()) {
    const subcommands = argv.length === 1 ? [] : Object.keys((await import("./cli/nsh.ts")).nshCommand.subCommands ?? {});
    if (hook.isHookInvocation(argv, false, subcommands)) return hook.runHookProcess(argv);
  }
  // What citty would print, without loading citty and every command's modules for it.
  if (argv.length === 1 && argv[0] === "--version") {
    console.log(VERSION);
    return 0;
  }
  return (await import("./cli/nsh.ts")).runNsh(argv);
}

main().then(
  (code) => process.exit(code),
  (e: Error) => {
    process.stderr.write(`nsh: ${e.message}\n`);
    if (process.env.NSH_DEBUG) process.stderr.write(`${e.stack}\n`);
    process.exit(1);
  },
);
