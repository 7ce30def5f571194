// The C shim between nsh and libslurm, as source text: nsh compiles it on first use against the
// login node's own slurm/slurm.h (see slurm-native-build.ts), because libslurm's ABI changes with
// every release (job_desc_msg_t's layout; libslurm.so.38 in 22.05, .so.45 in 26.05). Only ints,
// int64s and NUL-terminated strings cross the boundary, so the TypeScript side never depends on a
// Slurm struct. Pure: the source and the cache key; nothing here touches the machine.
import { createHash } from "node:crypto";

/** Bumped whenever the functions' signatures change (slurm-native-ffi.ts's table must match). */
export const SHIM_ABI = 1;

/**
 * Rules for this source: libc allocation only through malloc/free (under TinyCC, strdup and
 * calloc resolve to another allocator than free), and no Slurm symbol that slurm.h does not
 * declare except through dlsym (it would fail to link on a release that dropped it).
 */
export const SHIM_SOURCE = String.raw`
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
/* Slurm 26.05 takes a slurm_step_id_t where a job id was; this keeps the uint32_t calls (ignored before) */
#define SLURM_BACKWARD_COMPAT 1
#include <slurm/slurm.h>
#include <slurm/slurm_errno.h>

int nsh_shim_abi(void) { return ${SHIM_ABI}; }
long nsh_shim_slurm_version(void) { return SLURM_VERSION_NUMBER; }

static void put(char *buf, int len, const char *msg) { if (buf && len > 0) snprintf(buf, len, "%s", msg ? msg : ""); }
static int given(const char *s) { return s && *s; }
/* libslurm reports through errno (slurm_get_errno() returned just that, and is gone since 24.11) */
static int neg_errno(void) { int e = errno; return e > 0 ? -e : -1; }

/* libslurm dlopen()s its plugins (auth/munge, select/cons_tres, ...), which resolve libslurm's
 * symbols globally; an FFI loads this shim (and libslurm with it) RTLD_LOCAL, so the first RPC
 * would die with "undefined symbol" in a plugin. Promote libslurm to RTLD_GLOBAL before any call. */
static int inited;
int nsh_shim_init(const char *conf, char *libpath, int liblen, char *err, int errlen) {
    Dl_info info;
    if (!dladdr((void *)slurm_init, &info) || !info.dli_fname) { put(err, errlen, "cannot locate libslurm"); return -1; }
    put(libpath, liblen, info.dli_fname);
    if (inited) return 0;
    if (!dlopen(info.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD)) { put(err, errlen, dlerror()); return -1; }
    slurm_init(given(conf) ? conf : NULL);
    inited = 1;
    return 0;
}

/* The uid and gid of user (empty: the caller's). 0 or -1 with err set. */
static int who(const char *user, uint32_t *uid, uint32_t *gid, char *err, int errlen) {
    if (!given(user)) { *uid = getuid(); *gid = getgid(); return 0; }
    struct passwd *pw = getpwnam(user);
    if (!pw) { snprintf(err, errlen, "no such user '%s' on this machine", user); return -1; }
    *uid = pw->pw_uid; *gid = pw->pw_gid;
    return 0;
}

/* A batch job from flat fields; env holds env_count "K=V" strings one after another, each with its
 * NUL. nums: time limit (min), cpus, memory per node (MB), memory per CPU (MB); <= 0 = Slurm's
 * default. Returns the job id (> 0) or -(slurm errno); err gets Slurm's message. */
int64_t nsh_shim_submit(const char *script, const char *name, const char *workdir, const char *env, int env_count,
                        const char *std_out, const char *std_err, const char *partition, const char *comment,
                        const char *user, const int64_t *nums, char *err, int errlen) {
    job_desc_msg_t d;
    submit_response_msg_t *resp = NULL;
    char **envv;
    const char *p = env;
    int64_t rc;
    put(err, errlen, "");
    if (!inited) { put(err, errlen, "nsh_shim_init was not called"); return -EINVAL; }
    slurm_init_job_desc_msg(&d);
    if (who(user, &d.user_id, &d.group_id, err, errlen)) return -EINVAL;
    d.script = (char *)script;
    d.name = (char *)name;
    d.work_dir = (char *)workdir;
    if (given(std_out)) d.std_out = (char *)std_out;
    if (given(std_err)) d.std_err = (char *)std_err;
    if (given(partition)) d.partition = (char *)partition;
    if (given(comment)) d.comment = (char *)comment;
    if (nums[0] > 0) d.time_limit = (uint32_t)nums[0];
    if (nums[1] > 0) { d.min_cpus = (uint32_t)nums[1]; d.cpus_per_task = (uint16_t)nums[1]; d.num_tasks = 1; }
    if (nums[2] > 0) d.pn_min_memory = (uint64_t)nums[2];
    else if (nums[3] > 0) d.pn_min_memory = (uint64_t)nums[3] | MEM_PER_CPU;
    d.min_nodes = 1;
    envv = malloc((env_count + 1) * sizeof(char *));
    if (!envv) { put(err, errlen, "out of memory"); return -ENOMEM; }
    for (int i = 0; i < env_count; i++) { envv[i] = (char *)p; p += strlen(p) + 1; }
    envv[env_count] = NULL;
    d.environment = envv;
    d.env_size = (uint32_t)env_count;
    if (slurm_submit_batch_job(&d, &resp) != SLURM_SUCCESS || !resp) {
        rc = neg_errno();
        put(err, errlen, slurm_strerror((int)-rc));
    } else {
#if SLURM_VERSION_NUMBER >= SLURM_VERSION_NUM(26, 5, 0)
        rc = resp->step_id.job_id; /* 26.05: a slurm_step_id_t (22.05 and 24.11: job_id) */
#else
        rc = resp->job_id;
#endif
        if (resp->job_submit_user_msg) put(err, errlen, resp->job_submit_user_msg);
        slurm_free_submit_response_response_msg(resp);
    }
    free(envv);
    return rc;
}

static const char *base_state(uint32_t st) {
    static const char *names[] = {"PENDING", "RUNNING", "SUSPENDED", "COMPLETED", "CANCELLED", "FAILED",
                                  "TIMEOUT", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY"};
    uint32_t b = st & JOB_STATE_BASE;
    return b < sizeof names / sizeof *names ? names[b] : "UNKNOWN";
}
static const struct { uint32_t bit; const char *name; } flags[] = {
    {JOB_COMPLETING, "COMPLETING"}, {JOB_CONFIGURING, "CONFIGURING"}, {JOB_RESIZING, "RESIZING"},
    {JOB_REQUEUE, "REQUEUED"}, {JOB_REQUEUE_HOLD, "REQUEUE_HOLD"}, {JOB_SPECIAL_EXIT, "SPECIAL_EXIT"},
    {JOB_STOPPED, "STOPPED"}, {JOB_REVOKED, "REVOKED"}, {JOB_SIGNALING, "SIGNALING"},
    {JOB_STAGE_OUT, "STAGE_OUT"}, {JOB_LAUNCH_FAILED, "LAUNCH_FAILED"}, {JOB_POWER_UP_NODE, "POWER_UP_NODE"},
};

/* Appends s to out (at *at, capacity cap) with tabs and newlines made spaces; counts all bytes. */
static void field(char *out, int64_t cap, int64_t *at, const char *s, char end) {
    for (; s && *s; s++, (*at)++) if (*at < cap) out[*at] = (*s == '\t' || *s == '\n' || *s == '\r') ? ' ' : *s;
    if (*at < cap) out[*at] = end;
    (*at)++;
}

/* Jobs as text, one line each: id, state words (comma-separated), reason, nodes, raw exit status,
 * start, end (unix s), time limit (min; -1 none), comment — tab-separated. ids: the jobs wanted
 * (one id: one RPC for it; several or none: one RPC for the jobs of user, empty: the caller's, as
 * all of nsh's jobs are). Returns the bytes the whole text needs (more than cap: call again with a
 * bigger out), or -(slurm errno). A job Slurm does not know is simply absent. */
int64_t nsh_shim_jobs(const char *user, const uint32_t *ids, int nids, char *out, int64_t cap, char *err, int errlen) {
    job_info_msg_t *msg = NULL;
    const char *(*reason_string)(int) = (const char *(*)(int))dlsym(RTLD_DEFAULT, "slurm_job_reason_string");
    int64_t at = 0;
    int rc;
    uint32_t uid, gid;
    char num[96], words[256];
    put(err, errlen, "");
    if (!inited) { put(err, errlen, "nsh_shim_init was not called"); return -EINVAL; }
    if (nids == 1) rc = slurm_load_job(&msg, ids[0], SHOW_ALL);
    else {
        if (who(user, &uid, &gid, err, errlen)) return -EINVAL;
        rc = slurm_load_job_user(&msg, uid, SHOW_ALL);
    }
    if (rc != SLURM_SUCCESS || !msg) {
        int e = errno;
        if (e == ESLURM_INVALID_JOB_ID) { if (cap > 0) out[0] = 0; return 0; }
        put(err, errlen, slurm_strerror(e));
        return e > 0 ? -e : -1;
    }
    for (uint32_t i = 0; i < msg->record_count; i++) {
        slurm_job_info_t *j = &msg->job_array[i];
        int wanted = nids == 0;
        for (int k = 0; k < nids && !wanted; k++) wanted = ids[k] == j->job_id;
        if (!wanted) continue;
        snprintf(num, sizeof num, "%u", j->job_id);
        field(out, cap, &at, num, '\t');
        snprintf(words, sizeof words, "%s", base_state(j->job_state));
        for (size_t f = 0; f < sizeof flags / sizeof *flags; f++)
            if (j->job_state & flags[f].bit) { strncat(words, ",", sizeof words - strlen(words) - 1);
                                               strncat(words, flags[f].name, sizeof words - strlen(words) - 1); }
        field(out, cap, &at, words, '\t');
        field(out, cap, &at, j->state_reason && reason_string ? reason_string(j->state_reason) : "", '\t');
        field(out, cap, &at, j->nodes, '\t');
        snprintf(num, sizeof num, "%u", j->exit_code);
        field(out, cap, &at, num, '\t');
        snprintf(num, sizeof num, "%lld", (long long)j->start_time);
        field(out, cap, &at, num, '\t');
        snprintf(num, sizeof num, "%lld", (long long)j->end_time);
        field(out, cap, &at, num, '\t');
        snprintf(num, sizeof num, "%lld", j->time_limit >= NO_VAL ? -1LL : (long long)j->time_limit);
        field(out, cap, &at, num, '\t');
        field(out, cap, &at, j->comment, '\n');
    }
    slurm_free_job_info_msg(msg);
    if (at < cap) out[at] = 0;
    return at;
}

/* Ends a job (signal 0: SIGKILL, what scancel sends); 0 or -(slurm errno). */
int nsh_shim_cancel(uint32_t job_id, int sig) {
    if (!inited) return -EINVAL;
    return slurm_kill_job(job_id, (uint16_t)(sig > 0 ? sig : SIGKILL), 0) == SLURM_SUCCESS ? 0 : neg_errno();
}

/* slurmctld answers (0) or Slurm's errno. */
int nsh_shim_ping(void) { return inited && slurm_ping(0) == SLURM_SUCCESS ? 0 : neg_errno(); }

const char *nsh_shim_strerror(int e) { return slurm_strerror(e < 0 ? -e : e); }
`;

export interface ShimKeyInput {
  /** "22.05.8", from slurm_version.h */
  slurmVersion: string;
  arch: string;
  includeDir: string;
  libDir: string;
  /** the compiler's path; another compiler builds another file */
  compiler: string;
  source?: string;
}

/**
 * The cached shim's file name: the Slurm release compiled against, the machine, and a hash of
 * everything else that shapes the binary, so a new slurm.h or a new nsh builds a new shim and
 * nothing ever loads a shim built for another libslurm.
 */
export function shimFileName(k: ShimKeyInput): string {
  const hash = createHash("sha256")
    .update([SHIM_ABI, k.source ?? SHIM_SOURCE, k.includeDir, k.libDir, k.compiler].join("\0"))
    .digest("hex")
    .slice(0, 16);
  const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]/g, "_");
  return `libnsh-slurm-${safe(k.slurmVersion)}-${safe(k.arch)}-${hash}.so`;
}

/** SLURM_VERSION_NUMBER in slurm_version.h (0x160508) → "22.05.8"; null when absent. */
export function parseSlurmVersionHeader(text: string): string | null {
  const m = /#\s*define\s+SLURM_VERSION_NUMBER\s+(0x[0-9a-fA-F]+|\d+)/.exec(text);
  if (!m) return null;
  return slurmVersionText(Number(m[1]));
}

/** A SLURM_VERSION_NUMBER → "22.05.8". */
export const slurmVersionText = (n: number): string =>
  `${(n >> 16) & 0xff}.${String((n >> 8) & 0xff).padStart(2, "0")}.${n & 0xff}`;

/** The compiler's argv: the source comes on stdin, the shared object goes to `out`. */
export function compileArgv(compiler: string, includeDir: string, libDir: string, out: string): string[] {
  const lib = libDir ? ["-L", libDir, `-Wl,-rpath,${libDir}`] : [];
  return [compiler, "-O2", "-fPIC", "-shared", "-I", includeDir, "-x", "c", "-", "-x", "none", ...lib, "-o", out, "-lslurm", "-ldl"];
}
