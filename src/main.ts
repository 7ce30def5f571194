// Entry point. The name nsh is invoked by picks its personality (multi-call, like busybox).
import path from "node:path";
import { internalCommands } from "./cli/internal.ts";
import { runNsh } from "./cli/nsh.ts";
import { runSigstopCli } from "./cli/sigstop.ts";

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const internal = internalCommands[argv[0] ?? ""];
  if (internal) return internal(argv.slice(1));
  const personality = path.basename(process.argv0);
  if (personality === "nix-sigstop") return runSigstopCli(argv, process.env);
  if (argv[0] === "sigstop") return runSigstopCli(argv.slice(1), process.env);
  return runNsh(argv);
}

main().then(
  (code) => process.exit(code),
  (e: Error) => {
    process.stderr.write(`nsh: ${e.message}\n`);
    if (process.env.NSH_DEBUG) process.stderr.write(`${e.stack}\n`);
    process.exit(1);
  },
);
