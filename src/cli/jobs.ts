// `nsh jobs` lists the jobs nsh submitted with their state and phases; `nsh cancel` ends them.
import { defineCommand } from "citty";
import { loadNshConf } from "../config/nsh-conf.ts";
import { formatJobs, readJobRecords, type JobRecord } from "../hook/job-record.ts";
import { createScheduler } from "../schedulers/registry.ts";
import { cancelEach } from "../schedulers/scheduler.ts";
import { ensureStateDir } from "../state/dir.ts";
import { isAlive } from "../sys/proc.ts";

function records(): { dir: string; jobs: JobRecord[] } {
  const conf = loadNshConf().config;
  const dir = conf["state-dir"] || ensureStateDir();
  return { dir, jobs: readJobRecords(dir) };
}

const active = (r: JobRecord) => r.state === "pending" || r.state === "running" || r.state === "submitting";

export const jobsCommand = defineCommand({
  meta: { name: "jobs", description: "List the jobs nsh submitted: state, node and the time of each phase (queue, upload, build, download)." },
  args: { json: { type: "boolean", description: "one JSON object per job" }, all: { type: "boolean", description: "also finished jobs" } },
  async run({ args }) {
    const { jobs } = records();
    const shown = jobs
      .filter((r) => args.all || active(r))
      // A job whose hook is gone and that was never marked finished: its reaper cancelled it.
      .map((r) => (active(r) && !isAlive(r.hookPid) ? { ...r, message: r.message ?? "hook gone" } : r));
    // Written out before nsh exits: process.stdout.write into a pipe keeps only its first 128 KiB then.
    await Bun.write(Bun.stdout, args.json ? shown.map((r) => `${JSON.stringify(r)}\n`).join("") : formatJobs(shown));
  },
});

export const cancelCommand = defineCommand({
  meta: { name: "cancel", description: "Cancel nsh's jobs: the given job ids, or with --all every job still pending or running." },
  args: { all: { type: "boolean", description: "every active nsh job" } },
  async run({ args }) {
    const ids = (args._ as string[]).filter(Boolean);
    const { jobs } = records();
    const targets = args.all ? jobs.filter(active).map((r) => r.jobId).filter((x): x is string => !!x) : ids;
    if (targets.length === 0) {
      process.stderr.write(args.all ? "nsh cancel: no active nsh jobs\n" : "nsh cancel: give job ids, or --all\n");
      process.exitCode = args.all ? 0 : 2;
      return;
    }
    const failures = await cancelEach(await createScheduler(loadNshConf().config), targets);
    for (const id of targets) {
      const e = failures.get(id);
      if (e) process.stderr.write(`nsh cancel: job ${id}: ${e.message}\n`);
      else process.stdout.write(`cancelled job ${id}\n`);
    }
    const failed = failures.size;
    process.exitCode = failed ? 1 : 0;
  },
});
