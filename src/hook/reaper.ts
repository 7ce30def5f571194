// The reaper: a detached process per job that cancels it if the hook dies without saying it is
// done. Nix up to 2.34 SIGKILLs the hook's whole process group when the user interrupts a build
// (nix-protocols.md §1.7), so the cancel must come from outside that group. The hook hands it the
// scheduler settings (JWT included) through a pipe, never argv or a file.
import type { NshConfig } from "../config/nsh-conf.ts";
import { schedulerFor } from "./schedulers.ts";

export interface ReaperOrder {
  conf: NshConfig;
  /** Credentials the scheduler needs (the JWT), passed in memory only. */
  env: Record<string, string>;
  jobId: string;
}

export async function runReaper(): Promise<number> {
  const decoder = new TextDecoder();
  let text = "";
  let order: ReaperOrder | undefined;
  for await (const chunk of Bun.stdin.stream()) {
    text += decoder.decode(chunk);
    if (!order && text.includes("\n")) {
      order = JSON.parse(text.slice(0, text.indexOf("\n"))) as ReaperOrder;
      text = text.slice(text.indexOf("\n") + 1);
    }
    if (text.includes("done")) return 0;
  }
  if (!order) return 0;
  // The hook is gone without a word: the job must go too.
  const scheduler = schedulerFor(order.conf, order.env);
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      await scheduler.cancel(order.jobId);
      return 0;
    } catch {
      await Bun.sleep(500 * (attempt + 1));
    }
  }
  return 1;
}
