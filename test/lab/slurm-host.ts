// Host side of the private Slurm lab (test/lab/slurm.ts): installing Slurm,
// free ports, TCP probes, /etc/passwd, and finding the lab's processes.
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { aptInstall } from "./apt.ts";
import { accepts, findByMarker, isAlive } from "./proc.ts";
import type { RestOptions, RestResponse } from "./slurm-types.ts";

export const SYS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const SLURM_PACKAGES = ["slurm-wlm", "munge", "slurmrestd", "slurm-wlm-jwt-plugin"];
const BINARIES = ["munged", "slurmctld", "slurmd", "slurmrestd", "sbatch", "squeue", "sinfo", "scontrol", "scancel"];

export interface EnsureSlurmOptions {
  /** also install libslurm-dev (slurm.h, libslurm.so) for FFI tests */
  dev?: boolean;
}

export const which = (cmd: string): string | null => Bun.which(cmd, { PATH: `${process.env.PATH ?? ""}:${SYS_PATH}` });

function pluginDirs(): string[] {
  const triplet = process.arch === "arm64" ? "aarch64-linux-gnu" : "x86_64-linux-gnu";
  return [`/usr/lib/${triplet}/slurm-wlm`, "/usr/lib64/slurm", "/usr/lib/slurm"];
}
const haveJwtPlugins = (): boolean =>
  pluginDirs().some((d) => fs.existsSync(path.join(d, "auth_jwt.so")) && fs.existsSync(path.join(d, "rest_auth_jwt.so")));
const haveSlurmDev = (): boolean => fs.existsSync("/usr/include/slurm/slurm.h");

function missing(opts: EnsureSlurmOptions): string[] {
  const out = BINARIES.filter((b) => which(b) === null);
  if (!haveJwtPlugins()) out.push("auth_jwt.so/rest_auth_jwt.so");
  if (opts.dev && !haveSlurmDev()) out.push("slurm/slurm.h");
  return out;
}

/** Install Slurm, munge, slurmrestd and the JWT plugins (and libslurm-dev with dev) when missing. */
export async function ensureSlurm(opts: EnsureSlurmOptions = {}): Promise<void> {
  if (missing(opts).length === 0) return;
  const pkgs = opts.dev ? [...SLURM_PACKAGES, "libslurm-dev"] : SLURM_PACKAGES;
  try {
    await aptInstall(pkgs);
  } catch (e) {
    throw new Error(`ensureSlurm: could not install ${pkgs.join(" ")}: ${(e as Error).message}`);
  }
  const left = missing(opts);
  if (left.length > 0) throw new Error(`ensureSlurm: still missing after apt-get install: ${left.join(", ")}`);
}

/** A port that was free a moment ago (callers retry on a bind race). */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export function tcpAccepts(port: number, timeoutMs = 500): Promise<boolean> {
  return accepts({ host: "127.0.0.1", port }, timeoutMs);
}

export function lookupUser(name: string): { uid: number; gid: number } {
  for (const line of fs.readFileSync("/etc/passwd", "utf8").split("\n")) {
    const f = line.split(":");
    if (f[0] === name && f.length >= 4) return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  throw new Error(`startSlurmLab: no user ${name} in /etc/passwd (restUser)`);
}

/** PIDs carrying the lab marker, plus all their descendants (jobs whose script dropped SLURM_CONF). */
export function labProcesses(root: string): number[] {
  const children = new Map<number, number[]>();
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(name));
      children.set(ppid, list);
    } catch {
      // gone
    }
  }
  const seen = new Set<number>();
  const stack = findByMarker(root);
  while (stack.length > 0) {
    const pid = stack.pop()!;
    if (seen.has(pid) || pid === process.pid) continue;
    seen.add(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  return [...seen].filter(isAlive);
}

/** One HTTP call to the lab's slurmrestd with JWT headers (ro.token null: none); JSON parsed when it is JSON. */
export async function labRest(
  port: number,
  token: (user: string) => Promise<string>,
  method: string,
  urlPath: string,
  ro: RestOptions = {},
): Promise<RestResponse> {
  const user = ro.user ?? "root";
  const headers: Record<string, string> = { Accept: "application/json", ...ro.headers };
  if (ro.token !== null) {
    headers["X-SLURM-USER-NAME"] = user;
    headers["X-SLURM-USER-TOKEN"] = ro.token ?? (await token(user));
  }
  let body: string | undefined;
  if (ro.body !== undefined) {
    body = typeof ro.body === "string" ? ro.body : JSON.stringify(ro.body);
    headers["Content-Type"] ??= "application/json";
  }
  const t0 = performance.now();
  const res = await fetch(`http://127.0.0.1:${port}${urlPath}`, {
    method,
    headers,
    body,
    signal: AbortSignal.timeout(ro.timeoutMs ?? 30_000),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text, durationMs: performance.now() - t0 };
}
