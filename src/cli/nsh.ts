// `nsh`: the command tree. Later issues add the build hook, copy, doctor, jobs and cancel.
import { defineCommand, runMain } from "citty";
import { VERSION } from "../util/self.ts";
import { copyCommand } from "./copy.ts";
import { hookCommand } from "./hook.ts";
import { doctorCommand } from "./doctor.ts";
import { cancelCommand, jobsCommand } from "./jobs.ts";
import { sigstopCommand } from "./sigstop.ts";

export const nshCommand = defineCommand({
  meta: { name: "nsh", version: VERSION, description: "Nix on HPC clusters: a scheduler build hook, and nix-sigstop for busy evaluation hosts" },
  subCommands: {
    copy: copyCommand,
    hook: hookCommand,
    doctor: doctorCommand,
    jobs: jobsCommand,
    cancel: cancelCommand,
    sigstop: { ...sigstopCommand, meta: { ...sigstopCommand.meta, name: "sigstop" } },
  },
});

export async function runNsh(argv: string[]): Promise<number> {
  await runMain(nshCommand, { rawArgs: argv });
  return typeof process.exitCode === "number" ? process.exitCode : 0;
}
