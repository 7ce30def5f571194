// job-scheduler = slurm: Slurm through slurmrestd (slurm-rest.ts), as the registry knows it. Light:
// the REST client is imported only when a scheduler is made.
import { type SchedulerModule } from "./scheduler.ts";

/** How long a hook trusts the REST API version an earlier hook negotiated with the same server. */
const API_VERSION_LIFETIME_MS = 3600_000;
/**
 * How long the next hooks trust a hook's ping that proved the token (they skip their own). A wrong
 * token is then found at the submit, as clearly; a changed token has another key and is pinged.
 */
const PROOF_LIFETIME_MS = 600_000;

const JWT_SOURCES = "slurm-jwt-token, slurm-jwt-token-file or SLURM_JWT in the environment";

export const slurmRestModule: SchedulerModule = {
  kind: "slurm",
  paramsAttr: "extraSlurmParams",
  settings: [
    "slurm-state-dir",
    "slurm-api-host",
    "slurm-api-port",
    "slurm-api-version",
    "slurm-api-scheme",
    "slurm-api-ca-file",
    "slurm-jwt-token",
    "slurm-jwt-token-file",
    "slurm-user",
    "slurm-extra-submission-params",
  ],
  service: "slurmrestd",
  secretEnv: ["SLURM_JWT"],
  machineName: (conf) => `slurm:${conf["slurm-api-host"]}`,
  defaultLoginHost: (conf) => conf["slurm-api-host"],
  missingSetup(conf, env, readable) {
    // The order the scheduler takes the token in (slurm-rest.ts jwtToken): a token file that is set
    // but unreadable fails the submit even when SLURM_JWT is set.
    const inline = conf["slurm-jwt-token"].trim();
    const file = conf["slurm-jwt-token-file"].trim();
    if (!inline && file && !readable(file)) return [`a readable slurm-jwt-token-file (${file} cannot be read)`];
    if (!inline && !file && !env.SLURM_JWT?.trim()) return [`a JWT for slurmrestd (${JWT_SOURCES})`];
    return [];
  },
  async create(conf, env, { log, memoDir }) {
    const [{ SlurmRestScheduler }, { fileMemo }] = await Promise.all([import("./slurm-rest.ts"), import("../state/memo.ts")]);
    const memo = memoDir ? fileMemo<string>(memoDir, "slurm-api-version", API_VERSION_LIFETIME_MS) : undefined;
    const key = `${conf["slurm-api-host"]}:${conf["slurm-api-port"]}`;
    const rememberedVersion = memo && { get: () => memo.get(key), set: (v: string) => memo.set(key, v), forget: () => memo.forget(key) };
    const proofs = memoDir ? fileMemo<number>(memoDir, "slurm-api-proven", PROOF_LIFETIME_MS) : undefined;
    const proof = proofs && {
      recent: (k: string) => proofs.get(k) !== undefined,
      record: (k: string) => proofs.set(k, Date.now()),
      forget: (k: string) => proofs.forget(k),
    };
    const more = { ...(log ? { log } : {}), ...(rememberedVersion ? { rememberedVersion } : {}), ...(proof ? { proof } : {}) };
    return SlurmRestScheduler.fromConfig(conf, env, more);
  },
};
