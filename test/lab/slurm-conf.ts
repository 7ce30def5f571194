// Pure parts of the private Slurm lab (test/lab/slurm.ts): slurm.conf text,
// JWT minting, and reading slurmrestd's answers. No processes, no files.
//
// * Tokens: HS256 over the lab's key, payload {exp, iat, sun}; self-minted
//   tokens are accepted exactly like `scontrol token` ones. slurmrestd only
//   passes them through: a bad token gives 500 from slurmctld, missing
//   headers give 401.
// * munge: slurm finds the private munged's socket through
//   `AuthInfo=socket=...`, which auth/munge and cred/munge both use, so
//   clients need no munge variable (libmunge has no socket variable).
// * PlugStackConfig is set explicitly so /etc/slurm/plugstack.conf is not read.
import { createHmac } from "node:crypto";
import * as path from "node:path";

/** HS256 JWT as Slurm's auth/jwt expects it: {"exp","iat","sun"}. */
export function mintSlurmJwt(key: Buffer, user: string, lifetimeSec: number, now = Math.floor(Date.now() / 1000)): string {
  const enc = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString("base64url");
  const head = enc({ alg: "HS256", typ: "JWT" });
  const payload = enc({ exp: now + lifetimeSec, iat: now, sun: user });
  const sig = createHmac("sha256", key).update(`${head}.${payload}`).digest("base64url");
  return `${head}.${payload}.${sig}`;
}

export interface SlurmConfParams {
  root: string;
  node: string;
  cluster: string;
  partition: string;
  ctldPort: number;
  slurmdPort: number;
  cpus: number;
  memoryMb: number;
  defMemPerCpuMb: number;
  mungeSocket: string;
  jwtKeyFile: string;
  extraConf?: string;
}

/** slurm.conf for one lab: everything below root, its own ports, no cgroups, no accounting database. */
export function slurmConf(o: SlurmConfParams): string {
  const d = (p: string): string => path.join(o.root, p);
  return `# private slurm lab (test/lab/slurm.ts)
ClusterName=${o.cluster}
SlurmctldHost=${o.node}(127.0.0.1)
SlurmctldPort=${o.ctldPort}
SlurmdPort=${o.slurmdPort}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=${o.mungeSocket}
AuthAltTypes=auth/jwt
AuthAltParameters=jwt_key=${o.jwtKeyFile}
PlugStackConfig=${d("etc/plugstack.conf")}
StateSaveLocation=${d("state")}
SlurmdSpoolDir=${d("spool")}
SlurmctldPidFile=${d("run/slurmctld.pid")}
SlurmdPidFile=${d("run/slurmd.pid")}
SlurmctldLogFile=${d("log/slurmctld.log")}
SlurmdLogFile=${d("log/slurmd.log")}
SlurmctldDebug=info
SlurmdDebug=info
# no cgroups, no accounting database
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=${d("log/jobcomp.log")}
MailProg=/bin/true
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=${o.defMemPerCpuMb}
SlurmdParameters=config_overrides
ReturnToService=2
# latency: without batch_sched_delay=0 a batch job waits ~3 s, with it ~1 s (22.05's scheduler tick)
SchedulerType=sched/backfill
SchedulerParameters=sched_min_interval=0,batch_sched_delay=0,default_queue_depth=1000
MinJobAge=3600
KillWait=2
InactiveLimit=0
Waittime=0
MessageTimeout=10
${o.extraConf ? `${o.extraConf}\n` : ""}NodeName=${o.node} NodeAddr=127.0.0.1 NodeHostname=${o.node} CPUs=${o.cpus} RealMemory=${o.memoryMb} State=UNKNOWN
PartitionName=${o.partition} Nodes=ALL Default=YES MaxTime=INFINITE State=UP
`;
}

/** A daemon's log says it lost a bind race (callers retry on another port). */
export const addrInUse = (text: string): boolean => /Address already in use|EADDRINUSE|Unable to bind/i.test(text);

/** openapi plugins from `slurmrestd -s list`, minus the dbv ones (fatal without slurmdbd). */
export function usableOpenapiPlugins(listOutput: string): string[] {
  return [...listOutput.matchAll(/\b(openapi\/\S+)/g)].map((m) => m[1]!).filter((p) => !/\/db|slurmdbd/.test(p));
}

const versionParts = (v: string): number[] => v.slice(1).split(".").map(Number);

/** Order "v0.0.36" < "v0.0.38" numerically (string order breaks at v0.0.100). */
export function compareApiVersions(a: string, b: string): number {
  const x = versionParts(a);
  const y = versionParts(b);
  return x[0]! - y[0]! || x[1]! - y[1]! || x[2]! - y[2]!;
}

/** The /slurm/vX.Y.Z/ versions named by an OpenAPI document's paths, oldest first. */
export function apiVersionsFromOpenapi(doc: unknown): string[] {
  const paths = Object.keys((doc as { paths?: Record<string, unknown> } | undefined)?.paths ?? {});
  const found = paths.map((p) => /^\/slurm\/(v\d+\.\d+\.\d+)\//.exec(p)?.[1]).filter((v): v is string => v !== undefined);
  return [...new Set(found)].sort(compareApiVersions);
}
