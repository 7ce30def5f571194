// Internal personalities started by nsh itself (never typed by users): the sigstop build hook,
// its notifiers and the guard that hosts the daemon proxy.
import { runGuard, type GuardConfig } from "../sigstop/guard.ts";
import { runHookRelay } from "../sigstop/hook-relay.ts";
import { runNotifier, type NotifyArgs } from "../sigstop/notifier.ts";

export const internalCommands: Record<string, (args: string[]) => Promise<number> | number> = {
  "__sigstop-hook": ([rundir, ...rest]) => runHookRelay(rundir ?? "", rest),
  "__sigstop-notify": ([json]) => runNotifier(JSON.parse(json ?? "{}") as NotifyArgs),
  "__sigstop-guard": ([json]) => runGuard(JSON.parse(json ?? "{}") as GuardConfig),
};
