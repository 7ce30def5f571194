// Which scheduler parameters a derivation may set. Pure. A derivation's parameter attribute
// (extraSlurmParams, slurmNativeConstraints, pbsResources) is written by whoever may build, not by
// the machine's owner: merged whole into the job it could set the job's environment (PATH,
// LD_PRELOAD, NIX_CONFIG for the agent's own nix-store), its script, its output files or working
// directory, and so run code outside the build sandbox as the cluster account or overwrite its
// files. So only keys on an allow-list of resource and placement fields pass; the owner's own
// setting (slurm-extra-submission-params) is not checked. The list is an allow-list, not a
// deny-list, so a spelling nsh does not know (a newer API's field, another case) is refused too.

/** The word in derivation-params-allow that stands for the scheduler's built-in list. */
export const DEFAULT_WORD = "default";
/** The word in derivation-params-allow that lets every key through (the site trusts its builders). */
export const ANY_WORD = "*";

/** Slurm REST job_desc fields (v0.0.38 … v0.0.44 spellings) a derivation may set by default. */
const SLURM_REST_ALLOWED = [
  // CPUs and tasks
  "cpus_per_task", "minimum_cpus", "maximum_cpus", "minimum_cpus_per_node", "tasks", "tasks_per_node",
  "tasks_per_socket", "tasks_per_core", "tasks_per_board", "ntasks_per_tres", "threads_per_core",
  "cores_per_socket", "sockets_per_node", "minimum_boards_per_node", "minimum_sockets_per_board",
  "core_specification", "thread_specification", "overcommit",
  // memory and local disk (MB)
  "memory_per_node", "memory_per_cpu", "memory_per_gpu", "memory_per_tres", "temporary_disk_per_node",
  // GPUs, generic resources, TRES, licenses
  "gres", "gres_flags", "gpus", "gpus_per_node", "gpus_per_socket", "gpus_per_task", "cpus_per_gpu",
  "cpus_per_tres", "tres_per_job", "tres_per_node", "tres_per_socket", "tres_per_task", "licenses",
  // time, and when the job may start
  "time_limit", "time_minimum", "begin_time", "deadline", "hold", "nice",
  // where it runs and what it is charged to
  "partition", "qos", "account", "wckey", "reservation", "constraints", "prefer", "batch_features",
  "nodes", "minimum_nodes", "maximum_nodes", "required_nodes", "excluded_nodes", "contiguous",
  "exclusive", "shared", "oversubscribe", "spread_job", "required_switches", "wait_for_switch",
  "segment_size", "distribution",
  // a note for people reading squeue (nsh's reaper tag is added to it whatever it says)
  "comment",
] as const;

/** The built-in allow-list of each scheduler's per-derivation attribute (schedulers/registry.ts: each scheduler module's paramsAttr). */
export const DEFAULT_ALLOWED_PARAMS: Readonly<Record<string, readonly string[]>> = {
  extraSlurmParams: SLURM_REST_ALLOWED,
  // the original NSH's libslurm constraints (seed 004)
  slurmNativeConstraints: ["cpus", "memPerNode", "memPerCPU"],
  // PBS Resource_List entries
  pbsResources: ["ncpus", "ngpus", "mem", "vmem", "pmem", "pvmem", "walltime", "cput", "select", "place", "nodes",
    "mpiprocs", "ompthreads", "arch", "host", "naccelerators", "accelerator_model"],
};

export interface AllowList {
  any: boolean;
  keys: ReadonlySet<string>;
}

/**
 * derivation-params-allow's words for `attr` → the allow-list: `default` is the attribute's
 * built-in list (empty for an attribute nsh has no list for), `*` any key, other words add keys.
 */
export function allowList(attr: string, words: readonly string[] = [DEFAULT_WORD]): AllowList {
  const keys = new Set<string>();
  for (const w of words) {
    if (w === DEFAULT_WORD) for (const k of DEFAULT_ALLOWED_PARAMS[attr] ?? []) keys.add(k);
    else keys.add(w);
  }
  return { any: keys.has(ANY_WORD), keys };
}

/** The keys of `params` the list does not allow, in their order. */
export function refusedKeys(params: Record<string, unknown>, allowed: AllowList): string[] {
  return allowed.any ? [] : Object.keys(params).filter((k) => !allowed.keys.has(k));
}

const quoted = (keys: readonly string[]) => keys.map((k) => `'${k}'`).join(", ");

/** The message for refused keys: the derivation, the attribute, the keys, and how a site allows them. */
export function refusalMessage(drvPath: string, attr: string, refused: readonly string[]): string {
  const one = refused.length === 1;
  return (
    `${drvPath}: attribute ${attr} sets ${one ? "the key" : "the keys"} ${quoted(refused)}, ` +
    "which a derivation may not set " +
    `(only resource and placement fields pass; nothing was submitted); to allow ${one ? "it" : "them"}, ` +
    `add 'extra-derivation-params-allow = ${refused.join(" ")}' to nsh.conf`
  );
}
