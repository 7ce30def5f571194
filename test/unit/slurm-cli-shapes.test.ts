// slurm-cli's pure parts: sbatch's argv and environment for a JobSpec (REST field names → sbatch
// options, units, the tag in the comment, secrets only in the environment), and the parsers, on
// outputs captured from the lab's Slurm 22.05.8 tools (squeue -O, squeue --json, sacct -c).
import { describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { DEFAULT_ALLOWED_PARAMS } from "../../src/hook/derivation-params.ts";
import { type JobSpec, type JsonValue, SchedulerError } from "../../src/schedulers/scheduler.ts";
import { buildSbatch, parseSbatchOutput } from "../../src/schedulers/slurm-cli-sbatch.ts";
import {
  classifyFailure,
  parseExitPair,
  parseSacct,
  parseSlurmVersion,
  parseSqueueFormat,
  parseSqueueJson,
  parseTimeLimit,
  sacctArgs,
  squeueArgs,
  squeueUsesJson,
  taggedIn,
} from "../../src/schedulers/slurm-cli-shapes.ts";

const spec = (more: Partial<JobSpec> = {}): JobSpec => ({
  name: "nsh-hello",
  script: "#!/bin/sh\nexec /state/bin/nsh-agent job\n",
  workingDirectory: "/state/jobs",
  environment: { PATH: "/usr/bin:/bin", NSH_JOB_DRV: "/nix/store/x.drv" },
  stdout: "/state/jobs/k.out",
  stderr: "/state/jobs/k.out",
  timeLimitMinutes: 30,
  tag: "nsh:k",
  ...more,
});

const NOW = 1_800_000_000;
const argv = (extra: Record<string, JsonValue>, setting: Record<string, JsonValue> = {}): string[] => buildSbatch(spec({ extra }), setting, NOW).args;

function refusal(f: () => unknown): SchedulerError {
  try {
    f();
  } catch (e) {
    if (e instanceof SchedulerError) return e;
    throw e;
  }
  throw new Error("expected a SchedulerError");
}

describe("sbatch argv", () => {
  test("a plain spec: parsable, export of sbatch's own environment, the spec's fields, the tag as comment", () => {
    expect(buildSbatch(spec(), {}, NOW)).toEqual({
      args: [
        "--parsable",
        "--export=ALL",
        "--job-name=nsh-hello",
        "--chdir=/state/jobs",
        "--output=/state/jobs/k.out",
        "--error=/state/jobs/k.out",
        "--time=30",
        "--comment=nsh:k",
      ],
      env: { PATH: "/usr/bin:/bin", NSH_JOB_DRV: "/nix/store/x.drv" },
    });
  });

  test("the script and the environment's values are never in argv", () => {
    const secret = "eyJhbGciOiJIUzI1NiJ9.eyJzdW4iOiJyb290In0.c2VjcmV0";
    const call = buildSbatch(spec({ environment: { PATH: "/bin", TOKEN: secret } }), { environment: { OTHER: "also-secret" } }, NOW);
    expect(call.args.join(" ")).not.toContain(secret);
    expect(call.args.join(" ")).not.toContain("also-secret");
    expect(call.args.join(" ")).not.toContain("nsh-agent");
    expect(call.env).toEqual({ PATH: "/bin", TOKEN: secret, OTHER: "also-secret" });
  });

  test.each<[string, Record<string, JsonValue>, string[]]>([
    ["cpus, memory (MiB number)", { cpus_per_task: 4, memory_per_node: 2048 }, ["--cpus-per-task=4", "--mem=2048M"]],
    ["memory as {set, number} (v0.0.39+)", { memory_per_cpu: { set: true, infinite: false, number: 512 } }, ["--mem-per-cpu=512M"]],
    ["an unset no-val field is left out", { memory_per_node: { set: false, number: 0 } }, []],
    ["time limit wins over the spec's", { time_limit: 90 }, ["--time=90"]],
    ["infinite time", { time_limit: { set: true, infinite: true } }, ["--time=UNLIMITED"]],
    [
      "placement",
      { partition: "gpu", qos: "high", account: "proj", constraints: "avx2&ib", reservation: "r1" },
      ["--partition=gpu", "--qos=high", "--account=proj", "--constraint=avx2&ib", "--reservation=r1"],
    ],
    ["gres and licenses as lists", { gres: ["gpu:2", "nvme:1"], licenses: "matlab:1" }, ["--gres=gpu:2,nvme:1", "--licenses=matlab:1"]],
    ["flags", { exclusive: true, contiguous: true, hold: false }, ["--contiguous", "--exclusive"]],
    ["exclusive=user", { exclusive: "user" }, ["--exclusive=user"]],
    ["shared oversubscribe", { shared: "oversubscribe" }, ["--oversubscribe"]],
    ["node ranges", { minimum_nodes: 2, maximum_nodes: 4 }, ["--nodes=2-4"]],
    ["node lists", { required_nodes: ["n1", "n2"], excluded_nodes: "n3" }, ["--nodelist=n1,n2", "--exclude=n3"]],
    ["begin time as seconds from now", { begin_time: NOW + 120 }, ["--begin=now+120"]],
    ["switches with a wait", { required_switches: 1, wait_for_switch: 60 }, ["--switches=1@0:60"]],
    ["tres per task", { tres_per_task: "gres:gpu:1" }, ["--tres-per-task=gres:gpu:1"]],
  ])("%s", (_what, extra, want) => {
    const base = buildSbatch(spec(), {}, NOW).args.filter((a) => !a.startsWith("--time="));
    const got = argv(extra).filter((a) => !base.includes(a) && !(a === "--time=30"));
    expect(got).toEqual(want);
  });

  test("the owner's setting wins over the derivation's, key by key", () => {
    const a = argv({ partition: "drv", cpus_per_task: 2 }, { partition: "site" });
    expect(a).toContain("--partition=site");
    expect(a).toContain("--cpus-per-task=2");
  });

  test("a comment of the user's keeps the tag", () => {
    expect(argv({ comment: "my note" })).toContain("--comment=my note nsh:k");
  });

  test("every key of the default allow-list maps onto an sbatch option or is refused by name", () => {
    const FLAGS = ["exclusive", "overcommit", "contiguous", "hold", "spread_job", "oversubscribe"];
    const TEXTS = ["gres", "gres_flags", "gpus", "gpus_per_node", "gpus_per_socket", "gpus_per_task", "tres_per_job", "tres_per_node",
      "tres_per_socket", "tres_per_task", "cpus_per_tres", "memory_per_tres", "licenses", "nice", "partition", "qos", "account", "wckey",
      "reservation", "constraints", "prefer", "batch_features", "nodes", "required_nodes", "excluded_nodes", "distribution", "comment"];
    const sample = (k: string): JsonValue => (FLAGS.includes(k) ? true : k === "shared" ? "oversubscribe" : TEXTS.includes(k) ? "x1" : 1);
    const mapped: string[] = [];
    const refused: string[] = [];
    for (const key of DEFAULT_ALLOWED_PARAMS.extraSlurmParams!) {
      const extra: Record<string, JsonValue> = { [key]: sample(key) };
      if (key === "wait_for_switch") extra.required_switches = 1;
      try {
        const a = argv(extra);
        expect(a).not.toEqual(buildSbatch(spec(), {}, NOW).args); // the key became an option
        mapped.push(key);
      } catch (e) {
        expect(e).toBeInstanceOf(SchedulerError);
        expect((e as Error).message).toContain(`'${key}'`);
        refused.push(key);
      }
    }
    expect(refused.sort()).toEqual([
      "cpus_per_tres", "maximum_cpus", "memory_per_tres", "minimum_boards_per_node", "minimum_cpus",
      "minimum_sockets_per_board", "tasks_per_board", "tres_per_job", "tres_per_node", "tres_per_socket",
    ]);
    expect(mapped.length).toBe(DEFAULT_ALLOWED_PARAMS.extraSlurmParams!.length - refused.length);
  });

  test.each<[string, Record<string, JsonValue>, string]>([
    ["an unknown key", { frobnicate: 1 }, "'frobnicate'"],
    ["a key sbatch has no option for", { tres_per_node: "gres:gpu:1" }, "'tres_per_node' (use gres or gpus_per_node)"],
    ["memory that is not a number", { memory_per_node: "lots" }, "'memory_per_node': expected a non-negative integer"],
    ["a negative count", { cpus_per_task: -1 }, "'cpus_per_task'"],
    ["a flag that is not boolean", { contiguous: "yes" }, "'contiguous': expected true or false"],
    ["a newline in a value", { partition: "a\nb" }, "'partition'"],
    ["nodes twice", { nodes: "2", minimum_nodes: 1 }, "'nodes' and 'minimum_nodes'"],
    ["wait_for_switch alone", { wait_for_switch: 10 }, "'wait_for_switch' needs 'required_switches'"],
  ])("refused: %s", (_what, extra, words) => {
    const e = refusal(() => argv(extra));
    expect(e.kind).toBe("config");
    expect(e.message).toContain(words);
  });

  test("environment variables sbatch would read as its own options are refused", () => {
    const e = refusal(() => buildSbatch(spec({ environment: { PATH: "/bin", SBATCH_PARTITION: "x", SLURM_EXPORT_ENV: "NONE" } }), {}, NOW));
    expect(e.message).toContain("SBATCH_PARTITION, SLURM_EXPORT_ENV");
  });

  test("an empty environment gets a PATH (Slurm refuses a job without environment)", () => {
    expect(buildSbatch(spec({ environment: {} }), {}, NOW).env).toEqual({ PATH: "/usr/local/bin:/usr/bin:/bin" });
  });
});

describe("parsers (Slurm 22.05.8 output)", () => {
  test.each<[string, string | null]>([
    ["5\n", "5"],
    ["12;cluster2\n", "12"],
    ["sbatch: warning: something\n", null],
    ["", null],
  ])("sbatch --parsable %j → %p", (out, id) => expect(parseSbatchOutput(out)).toBe(id));

  test("versions and which squeue output they get", () => {
    expect(parseSlurmVersion("slurm-wlm 22.05.8\n")).toEqual({ release: "22.05.8", major: 22, minor: 5 });
    expect(parseSlurmVersion("slurm 23.11.1")).toEqual({ release: "23.11.1", major: 23, minor: 11 });
    expect(squeueUsesJson(parseSlurmVersion("slurm-wlm 22.05.8"))).toBe(false);
    expect(squeueUsesJson(parseSlurmVersion("slurm 23.02.0"))).toBe(true);
    expect(squeueUsesJson(null)).toBe(false);
    expect(squeueArgs(["5", "6"], false).slice(0, 5)).toEqual(["-h", "-t", "all", "-j", "5,6"]);
    expect(sacctArgs(["7"], true).slice(0, 2)).toEqual(["-c", "-X"]);
  });

  test.each<[string, number | null]>([
    ["UNLIMITED", null],
    ["5:00", 5],
    ["3:00", 3],
    ["1-02:04:00", 1564],
    ["365-00:00:00", 525600],
    ["00:05:00", 5],
    ["525600", 525600],
    ["INVALID", null],
  ])("time limit %p → %p", (text, minutes) => expect(parseTimeLimit(text)).toBe(minutes));

  test.each<[string, { exitCode: number | null; signal: number | null }]>([
    ["3:0", { exitCode: 3, signal: null }],
    ["0:15", { exitCode: null, signal: 15 }],
    ["0:0", { exitCode: 0, signal: null }],
  ])("ExitCode %p", (text, want) => expect(parseExitPair(text)).toEqual(want));

  // squeue -h -t all -j 1,5,6,7 -O <fields>, SLURM_TIME_FORMAT=%s: one comment holds the delimiter
  const SQUEUE = [
    "6|CANCELLED|None|vm|365-00:00:00|1796560127|1796560129|15|nsh:s2",
    "1|FAILED|NonZeroExitCode|vm|UNLIMITED|1796559883|1796559885|768|nsh:abc",
    "5|FAILED|NonZeroExitCode|vm|3:00|1796560127|1796560127|1024|nsh:smoke",
    "7|PENDING|JobHeldUser||UNLIMITED|N/A|N/A|0|nsh:held",
    "3|FAILED|BadConstraints||UNLIMITED|1796559917|1796559917|1|a|b nsh:x",
    "2|RUNNING|None|vm|5:00|1796559883|1796560183|0|(null)",
    "",
  ].join("\n");

  test("squeue -O rows → states, exit codes and signals from the wait status, reasons, nodes, limits", () => {
    const m = parseSqueueFormat(SQUEUE);
    expect(m.get("1")).toEqual({
      id: "1", state: "failed", rawState: ["FAILED"], reason: "NonZeroExitCode", nodes: "vm",
      exitCode: 3, signal: null, startTime: 1796559883, endTime: 1796559885, timeLimitMinutes: null,
    });
    expect(m.get("6")).toMatchObject({ state: "cancelled", exitCode: null, signal: 15, timeLimitMinutes: 525600 });
    expect(m.get("7")).toEqual({
      id: "7", state: "pending", rawState: ["PENDING"], reason: "JobHeldUser", nodes: null,
      exitCode: null, signal: null, startTime: null, endTime: null, timeLimitMinutes: null,
    });
    // a running job's end time is an estimate, not a time
    expect(m.get("2")).toMatchObject({ state: "running", reason: null, startTime: 1796559883, endTime: null, exitCode: null, timeLimitMinutes: 5 });
    expect(taggedIn(SQUEUE, "nsh:x")).toEqual([]); // finished jobs are not found
    expect(taggedIn(SQUEUE.replace("3|FAILED", "3|RUNNING"), "nsh:x")).toEqual(["3"]);
    expect(taggedIn(SQUEUE, "nsh:held")).toEqual(["7"]);
  });

  test.each<[string, string]>([
    ["PENDING", "pending"],
    ["CONFIGURING", "running"],
    ["COMPLETING", "completing"],
    ["COMPLETED", "completed"],
    ["TIMEOUT", "timeout"],
    ["NODE_FAIL", "node_fail"],
    ["OUT_OF_MEMORY", "out_of_memory"],
    ["PREEMPTED", "failed"],
    ["BOOT_FAIL", "node_fail"],
    ["SUSPENDED", "running"],
    ["REQUEUED", "pending"],
  ])("state %s → %s", (word, state) => {
    expect(parseSqueueFormat(`9|${word}|None|vm|5:00|1|2|0|(null)`).get("9")!.state).toBe(state as never);
  });

  test("sacct -c (jobcomp) and sacct with slurmdbd ('CANCELLED by 0', D-HH:MM:SS limits)", () => {
    const jobcomp = "1|FAILED|3:0||vm|UNLIMITED|1796559883|1796559885\n5|FAILED|4:0||vm|3|1796560127|1796560127\n";
    expect(parseSacct(jobcomp).get("5")).toEqual({
      id: "5", state: "failed", rawState: ["FAILED"], reason: null, nodes: "vm",
      exitCode: 4, signal: null, startTime: 1796560127, endTime: 1796560127, timeLimitMinutes: 3,
    });
    // the slurmdbd shape, written from sacct's documented format (no slurmdbd in the lab)
    const db = "102|CANCELLED by 0|0:15|None|node1|00:05:00|1796559883|1796559885\n103|COMPLETED|0:0|None|node1|1-00:00:00|1796559883|1796559885\n";
    expect(parseSacct(db).get("102")).toMatchObject({ state: "cancelled", signal: 15, exitCode: null, timeLimitMinutes: 5 });
    expect(parseSacct(db).get("103")).toMatchObject({ state: "completed", exitCode: 0, timeLimitMinutes: 1440 });
  });

  test("squeue --json (22.05 lists every job whatever -j says): only the wanted ids, REST v0.0.38 shapes", () => {
    const json = JSON.parse(fs.readFileSync(path.join(import.meta.dir, "fixtures", "squeue-json-22.05.json"), "utf8"));
    const m = parseSqueueJson(json, ["1", "7"]);
    expect([...m.keys()].sort()).toEqual(["1", "7"]);
    expect(m.get("1")).toMatchObject({ state: "failed", exitCode: 3, reason: "NonZeroExitCode", nodes: "vm" });
    expect(m.get("7")).toMatchObject({ state: "pending", reason: "JobHeldUser", startTime: null });
    expect(parseSqueueJson(json, ["6"]).get("6")).toMatchObject({ state: "cancelled", signal: 15 });
  });

  test.each<[string, string]>([
    ["sbatch: error: Batch job submission failed: Invalid account or account/partition combination specified", "rejected"],
    ["sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)", "unreachable"],
    ["sbatch: error: fetch_config: DNS SRV lookup failed\nsbatch: fatal: Could not establish a configuration source", "config"],
    ["sbatch: error: Invalid user id: 12345", "auth"],
    ["squeue: error: Munge encode failed: Failed to access \"/run/munge/munge.socket.2\"", "auth"],
  ])("failure %p is %p", (stderr, kind) => expect(classifyFailure(stderr)).toBe(kind as never));
});
