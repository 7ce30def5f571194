// `nsh`: the command tree. Each subcommand's module is imported when that subcommand runs (or for
// --help): `nsh jobs` must not load ssh2, the copy engine and the sigstop wrapper.
import { type CommandDef, defineCommand, runMain } from "citty";
import { VERSION } from "../util/self.ts";

export const nshCommand = defineCommand({
  meta: { name: "nsh", version: VERSION, description: "Nix on HPC clusters: a scheduler build hook, and nix-sigstop for busy evaluation hosts" },
  subCommands: {
    copy: () => import("./copy.ts").then((m) => m.copyCommand as CommandDef),
    hook: () => import("./hook.ts").then((m) => m.hookCommand),
    doctor: () => import("./doctor.ts").then((m) => m.doctorCommand as CommandDef),
    jobs: () => import("./jobs.ts").then((m) => m.jobsCommand as CommandDef),
    cancel: () => import("./jobs.ts").then((m) => m.cancelCommand as CommandDef),
    sigstop: () => import("./sigstop.ts").then(({ sigstopCommand: c }) => ({ ...c, meta: { ...c.meta, name: "sigstop" } }) as CommandDef),
  },
});

export async function runNsh(argv: string[]): Promise<number> {
  await runMain(nshCommand, { rawArgs: argv });
  return typeof process.exitCode === "number" ? process.exitCode : 0;
}
