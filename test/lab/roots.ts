// Debian roots for the lab's newer Nix and Slurm (trixie: Nix 2.26 / Slurm 24.11, sid: Nix 2.34 /
// Slurm 26.05), chosen per test run with NSH_LAB_SUITE=bookworm|trixie|sid (default bookworm: the
// host's own packages, no root). Each root is built once with debootstrap and cached outside the
// checkout under /var/cache/nsh-lab/roots/<suite>-<hash>; a flock keeps parallel test files from
// building it twice, and the marker file is written only when the build completed.
// How a lab runs a root's programs: root-scripts.ts (enterScript).
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { aptInstall } from "./apt.ts";
import { runCommand } from "./proc.ts";
import {
  bindPaths,
  buildRootScript,
  debianMirror,
  enterScript,
  ROOT_PACKAGES,
  rootName,
  type RootSuite,
  selectedSuite,
  type Suite,
  wrapperScript,
} from "./root-scripts.ts";

export { ROOT_PACKAGES, selectedSuite, SUITE_VAR, SUITES, type RootSuite, type Suite } from "./root-scripts.ts";

export const ROOTS_CACHE = process.env.NSH_LAB_ROOTS_CACHE ?? "/var/cache/nsh-lab/roots";
const SYS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const REPO_DIR = path.resolve(import.meta.dir, "..", "..");

export interface LabRoot {
  suite: RootSuite;
  dir: string;
  /** `nix --version` inside the root, e.g. "nix (Nix) 2.34.8" */
  nixVersion: string;
  /** `slurmctld -V` inside the root, e.g. "slurm 26.05.5" */
  slurmVersion: string;
  /** ms the build took, when this call built it */
  builtMs?: number;
}

function readRoot(suite: RootSuite, dir: string, builtMs?: number): LabRoot {
  const read = (f: string): string => fs.readFileSync(path.join(dir, f), "utf8").trim();
  return { suite, dir, nixVersion: read(".nsh-nix-version"), slurmVersion: read(".nsh-slurm-version"), builtMs };
}

function machineMirror(): string {
  const files: Array<{ name: string; text: string }> = [];
  const add = (file: string): void => {
    try {
      files.push({ name: file, text: fs.readFileSync(file, "utf8") });
    } catch {
      // unreadable: not a source
    }
  };
  add("/etc/apt/sources.list");
  try {
    for (const f of fs.readdirSync("/etc/apt/sources.list.d").sort()) add(path.join("/etc/apt/sources.list.d", f));
  } catch {
    // no .d directory
  }
  const mirror = debianMirror(files);
  if (!mirror) throw new Error("ensureRoot: no Debian mirror in /etc/apt/sources.list or /etc/apt/sources.list.d/*");
  return mirror;
}

const building = new Map<RootSuite, Promise<LabRoot>>();

/** The root for `suite`, built (once, under a flock) if it is not in the cache yet. */
export function ensureRoot(suite: RootSuite): Promise<LabRoot> {
  let job = building.get(suite);
  if (!job) {
    job = buildOnce(suite);
    building.set(suite, job);
    job.catch(() => building.delete(suite));
  }
  return job;
}

async function buildOnce(suite: RootSuite): Promise<LabRoot> {
  const dir = path.join(ROOTS_CACHE, rootName(suite));
  if (fs.existsSync(path.join(dir, ".nsh-root-complete"))) return readRoot(suite, dir);
  if (!Bun.which("debootstrap", { PATH: SYS_PATH })) await aptInstall(["debootstrap"]);
  fs.mkdirSync(ROOTS_CACHE, { recursive: true });
  const script = buildRootScript({ suite, dir, mirror: machineMirror(), packages: ROOT_PACKAGES });
  const started = Date.now();
  const r = await runCommand(["flock", "-w", "3600", `${dir}.lock`, "/bin/sh", "-c", script], {
    env: { PATH: SYS_PATH, LC_ALL: "C", DEBIAN_FRONTEND: "noninteractive" },
    timeoutMs: 3600_000,
  });
  if (r.code !== 0 || !fs.existsSync(path.join(dir, ".nsh-root-complete"))) {
    const tail = `${r.stdout}\n${r.stderr}`.trim().split("\n").slice(-25).join("\n");
    throw new Error(`ensureRoot(${suite}): building ${dir} failed (exit ${r.code}):\n${tail}`);
  }
  return readRoot(suite, dir, Date.now() - started);
}

/** The root for `suite` (default: what NSH_LAB_SUITE asks for), built if needed; undefined for bookworm. */
export async function selectedRoot(wanted?: Suite): Promise<LabRoot | undefined> {
  const suite: Suite = wanted ?? selectedSuite(process.env);
  return suite === "bookworm" ? undefined : ensureRoot(suite);
}

/**
 * Writes `binDir/<name>` wrappers running the root's `/usr/{bin,sbin}/<name>` for each name (the
 * lab puts binDir first on PATH) plus `binDir/.enter`; returns name → wrapper path.
 */
export function writeRootBin(
  root: LabRoot,
  binDir: string,
  names: string[],
  extraBinds: string[] = [],
): Record<string, string> {
  fs.mkdirSync(binDir, { recursive: true });
  const enter = path.join(binDir, ".enter");
  const binds = bindPaths(["/tmp", os.tmpdir(), "/var/tmp", REPO_DIR, ...extraBinds]);
  fs.writeFileSync(enter, enterScript(root.dir, binds), { mode: 0o755 });
  const out: Record<string, string> = {};
  for (const name of names) {
    const target = ["/usr/bin", "/usr/sbin"]
      .map((d) => `${d}/${name}`)
      .find((p) => fs.existsSync(path.join(root.dir, p)));
    if (!target) continue; // not in this release (e.g. a tool that was dropped)
    out[name] = path.join(binDir, name);
    fs.writeFileSync(out[name], wrapperScript(enter, target), { mode: 0o755 });
  }
  return out;
}

let hostNix: Promise<string> | undefined;
let hostSlurm: Promise<string> | undefined;
const firstLine = async (argv: string[]): Promise<string> => {
  const r = await runCommand(argv, { env: { PATH: SYS_PATH }, timeoutMs: 30_000 }).catch(() => undefined);
  return (r?.stdout ?? "").trim().split("\n")[0] ?? "";
};
/** `nix --version` of the host (bookworm). */
export const hostNixVersion = (): Promise<string> => (hostNix ??= firstLine(["nix", "--version"]));
/** `slurmctld -V` of the host (bookworm). */
export const hostSlurmVersion = (): Promise<string> => (hostSlurm ??= firstLine(["slurmctld", "-V"]));

/** "nix (Nix) 2.34.8" → [2, 34, 8]; "slurm 26.05.5" → [26, 5, 5]. */
export function versionNumbers(versionLine: string): number[] {
  const m = /(\d+)\.(\d+)(?:\.(\d+))?/.exec(versionLine);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : [];
}
