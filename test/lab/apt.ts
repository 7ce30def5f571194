// apt-get helper for the lab: other people may be installing at the same time
// on this machine, so a held dpkg/apt lock is retried instead of failing.
import { runCommand, sleep, type RunResult } from "./proc.ts";

const APT_ENV: Record<string, string> = {
  PATH: process.env.PATH ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  DEBIAN_FRONTEND: "noninteractive",
  LC_ALL: "C",
};

let updated: Promise<void> | undefined;
// Serialise installs from this process; dpkg allows only one anyway.
let queue: Promise<unknown> = Promise.resolve();

const isLockError = (r: RunResult): boolean =>
  /Could not get lock|Unable to acquire the dpkg frontend lock|is held by process|Unable to lock/i.test(r.stderr);

async function aptGet(args: string[], what: string): Promise<void> {
  let last: RunResult | undefined;
  for (let attempt = 1; attempt <= 30; attempt++) {
    last = await runCommand(["apt-get", "-q", "-o", "DPkg::Lock::Timeout=60", ...args], {
      env: APT_ENV,
      timeoutMs: 15 * 60_000,
    });
    if (last.code === 0) return;
    if (!isLockError(last)) break;
    await sleep(5000);
  }
  const tail = (last?.stderr ?? "").split("\n").slice(-15).join("\n");
  throw new Error(`${what} failed (apt-get ${args.join(" ")}, exit ${last?.code}):\n${tail}`);
}

/** apt-get update once per process, then install the packages (no recommends). */
export function aptInstall(pkgs: string[]): Promise<void> {
  const job = queue.then(async () => {
    updated ??= aptGet(["update"], "apt-get update").catch((e: unknown) => {
      updated = undefined; // let a later call try again
      throw e;
    });
    await updated;
    await aptGet(["install", "-y", "--no-install-recommends", ...pkgs], `installing ${pkgs.join(" ")}`);
  });
  queue = job.catch(() => undefined);
  return job;
}
