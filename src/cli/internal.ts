// Internal personalities started by nsh itself (never typed by users): the sigstop build hook,
// its notifiers and the guard that hosts the daemon proxy; the job agent on a cluster node and
// the bridge that joins an ssh channel to it. Each is imported when run: the guard and the hook
// start once per evaluation or build, and loading the others' modules cost them ~20 ms.
import type { GuardConfig } from "../sigstop/guard.ts";
import type { NotifyArgs } from "../sigstop/notifier.ts";

export const internalCommands: Record<string, (args: string[]) => Promise<number> | number> = {
  "__sigstop-hook": async ([rundir, ...rest]) => (await import("../sigstop/hook-relay.ts")).runHookRelay(rundir ?? "", rest),
  "__sigstop-notify": async ([json]) => (await import("../sigstop/notifier.ts")).runNotifier(JSON.parse(json ?? "{}") as NotifyArgs),
  "__sigstop-guard": async ([json]) => (await import("../sigstop/guard.ts")).runGuard(JSON.parse(json ?? "{}") as GuardConfig),
  "__agent": async (args) => {
    const [{ runAgent }, { parseAgentArgs }] = await Promise.all([import("../agent/agent.ts"), import("../agent/protocol.ts")]);
    return runAgent(parseAgentArgs(args));
  },
  "__agent-connect": async (args) => (await import("../agent/connect.ts")).runAgentConnect(args),
  "__pbs-client": async () => (await import("../schedulers/pbs-client.ts")).runPbsClient(),
  "__job-reaper": async () => (await import("../hook/reaper.ts")).runReaper(),
  "__ssh-relay": async (args) => (await import("../remote/ssh-relay-server.ts")).runSshRelay(args),
};
