// Internal personalities started by nsh itself (never typed by users): the sigstop build hook,
// its notifiers and the guard that hosts the daemon proxy; the job agent on a cluster node and
// the bridge that joins an ssh channel to it.
import { runAgent } from "../agent/agent.ts";
import { runAgentConnect } from "../agent/connect.ts";
import { parseAgentArgs } from "../agent/protocol.ts";
import { runReaper } from "../hook/reaper.ts";
import { runGuard, type GuardConfig } from "../sigstop/guard.ts";
import { runHookRelay } from "../sigstop/hook-relay.ts";
import { runNotifier, type NotifyArgs } from "../sigstop/notifier.ts";

export const internalCommands: Record<string, (args: string[]) => Promise<number> | number> = {
  "__sigstop-hook": ([rundir, ...rest]) => runHookRelay(rundir ?? "", rest),
  "__sigstop-notify": ([json]) => runNotifier(JSON.parse(json ?? "{}") as NotifyArgs),
  "__sigstop-guard": ([json]) => runGuard(JSON.parse(json ?? "{}") as GuardConfig),
  "__agent": (args) => runAgent(parseAgentArgs(args)),
  "__agent-connect": (args) => runAgentConnect(args),
  "__job-reaper": () => runReaper(),
};
