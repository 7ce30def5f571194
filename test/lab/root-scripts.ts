// Pure parts of the lab's Debian roots (test/lab/roots.ts): which suite a run asks for, the
// apt mirror the machine uses, and the shell scripts that build a root and enter it.
// No processes, no files.
//
// Entering a root: a private mount namespace (unshare -m) in which the root is bind-mounted on
// itself, /dev /proc /sys and the lab's directories are bind-mounted in at their host paths, and
// pivot_root makes it "/". Not chroot(2): inside a chroot the kernel refuses user namespaces
// (Nix's sandbox, chroot stores) and /proc/<pid>/exe reads as the host path (versions.md). Not
// bwrap: it forks, so the PID the lab spawns would not be the daemon's. Here every step execs,
// so the spawned PID is the program's own, and the mounts live only as long as the namespace's
// processes: nothing to unmount on the host, even after a crash.
import { createHash } from "node:crypto";

export const SUITES = ["bookworm", "trixie", "sid"] as const;
export type Suite = (typeof SUITES)[number];
/** The suites that run from a debootstrap root (bookworm is the host itself). */
export type RootSuite = Exclude<Suite, "bookworm">;

/** Environment variable choosing the lab's Nix and Slurm for a test run. */
export const SUITE_VAR = "NSH_LAB_SUITE";

/** The suite a run asks for; bookworm (the host's own packages) when unset. */
export function selectedSuite(env: Record<string, string | undefined>): Suite {
  const v = (env[SUITE_VAR] ?? "").trim();
  if (v === "") return "bookworm";
  if ((SUITES as readonly string[]).includes(v)) return v as Suite;
  throw new Error(`${SUITE_VAR}=${JSON.stringify(v)}: expected one of ${SUITES.join(", ")}`);
}

/** Every package the Nix, Slurm and cluster labs use inside a root. */
export const ROOT_PACKAGES = [
  "nix-bin",
  "slurm-wlm",
  "slurmrestd",
  "slurm-wlm-jwt-plugin",
  "munge",
  "libslurm-dev",
  // slurm-native compiles its C shim against the root's slurm/slurm.h when nsh runs inside it
  "gcc",
  "libc6-dev",
  // the PBS lab's clients (built on the host, test/lab/pbs-build.ts) run inside the root for its Nix's nsh
  "libcjson1",
  "openssh-client",
  "procps",
  "mount",
  "ca-certificates",
];

/** Bump when the build recipe changes in a way that changes the root. */
const RECIPE = "2";

/** Cache directory name: the suite plus a hash of everything that shapes the root. */
export function rootName(suite: RootSuite, packages = ROOT_PACKAGES): string {
  const recipe = JSON.stringify({ suite, packages, RECIPE, arch: process.arch });
  const hash = createHash("sha256").update(recipe).digest("hex");
  return `${suite}-${hash.slice(0, 12)}`;
}

/** The Debian mirror named by the machine's apt sources (deb822 .sources or one-line .list files). */
export function debianMirror(files: Array<{ name: string; text: string }>): string | undefined {
  const found: string[] = [];
  for (const f of files) {
    if (f.name.endsWith(".sources")) {
      for (const stanza of f.text.split(/\n\s*\n/)) {
        const field = (k: string): string => new RegExp(`^${k}:\\s*(.*)$`, "mi").exec(stanza)?.[1]?.trim() ?? "";
        if (!/\bdeb\b/.test(field("Types")) || /^no$/i.test(field("Enabled"))) continue;
        if (!/\b(bookworm|trixie|sid|stable|testing|unstable)\b/.test(field("Suites"))) continue;
        found.push(...field("URIs").split(/\s+/).filter(Boolean));
      }
    } else if (f.name.endsWith(".list")) {
      for (const line of f.text.split("\n")) {
        const m = /^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line);
        if (m && /^(bookworm|trixie|sid|stable|testing|unstable)(-updates)?$/.test(m[2]!)) found.push(m[1]!);
      }
    }
  }
  return found.find((u) => !/security/.test(u) && /debian/.test(u)) ?? found.find((u) => !/security/.test(u));
}

const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** Builds the root at `dir` (via `dir.tmp`, renamed when complete); run it under a flock. */
export function buildRootScript(o: { suite: RootSuite; dir: string; mirror: string; packages: string[] }): string {
  const apt = `apt-get -q -o Acquire::Check-Valid-Until=false -o DPkg::Lock::Timeout=60`;
  return `set -eu
R=${q(o.dir)}
T="$R.tmp"
[ -f "$R/.nsh-root-complete" ] && exit 0
# a half-built root from an interrupted build: its mounts died with its namespace
rm -rf --one-file-system "$T"
debootstrap --variant=minbase ${q(o.suite)} "$T" ${q(o.mirror)}
# no service may start inside the root while packages install
printf '#!/bin/sh\\nexit 101\\n' > "$T/usr/sbin/policy-rc.d"; chmod 755 "$T/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$T/etc/resolv.conf" 2>/dev/null || true
unshare --mount --propagation private /bin/sh -euc '
  T=$1
  mount --rbind /dev "$T/dev"; mount -t proc proc "$T/proc"; mount --rbind /sys "$T/sys"
  export DEBIAN_FRONTEND=noninteractive LC_ALL=C PATH=/usr/sbin:/usr/bin:/sbin:/bin
  chroot "$T" ${apt} update
  chroot "$T" ${apt} install -y --no-install-recommends ${o.packages.map(q).join(" ")}
  chroot "$T" apt-get clean
  chroot "$T" nix --version > "$T/.nsh-nix-version"
  chroot "$T" slurmctld -V > "$T/.nsh-slurm-version"
' sh "$T"
mkdir -p "$T/.nsh-old"
date -u +%FT%TZ > "$T/.nsh-root-complete"
mv "$T" "$R"
`;
}

/** Host paths every lab bind-mounts into the root at the same path (nested ones dropped). */
export function bindPaths(paths: string[]): string[] {
  const uniq = [...new Set(paths.map((p) => p.replace(/\/+$/, "") || "/"))].sort();
  return uniq.filter((p) => p !== "/" && !uniq.some((o) => o !== p && p.startsWith(`${o}/`)));
}

/**
 * `enter ARGV...`: runs ARGV inside the root, in the caller's working directory, with the same
 * PID (every step execs). NSH_LAB_IN_ROOT tells wrappers they are already inside. A caller other
 * than root (the tests' other-user scenarios) cannot make a mount namespace by itself: it gets one
 * inside a user namespace where it is root for the mounts, then a nested one that maps it back to
 * its own uid and gid, so the program sees its own ids (and the daemon, through the socket, too).
 */
export function enterScript(rootDir: string, binds: string[]): string {
  return `#!/bin/sh
# Runs "$@" inside ${rootDir} (test/lab/roots.ts); same PID, mounts private to it.
uid=$(id -u); gid=$(id -g)
userns=; [ "$uid" = 0 ] || userns=--map-root-user
exec /usr/bin/unshare $userns --mount --propagation private /bin/sh -euc '
  uid=$1; gid=$2; shift 2
  R=${q(rootDir)}
  cwd=$(pwd -P)
  mount --bind "$R" "$R"
  mount --rbind /dev "$R/dev"; mount --rbind /proc "$R/proc"; mount --rbind /sys "$R/sys"
  for d in ${binds.map(q).join(" ")}; do mkdir -p "$R$d" 2>/dev/null || :; mount --rbind "$d" "$R$d"; done
  # names as on the host (Slurm resolves the node by the machine hostname); debootstrap writes no /etc/hosts
  for f in /etc/hosts /etc/resolv.conf; do
    if [ -f "$f" ]; then [ -e "$R$f" ] || : > "$R$f"; mount --bind "$f" "$R$f"; fi
  done
  cd "$R"
  pivot_root . .nsh-old
  cd /
  # (in a user namespace the host mounts below are locked: the old root then stays, out of the way)
  umount -l /.nsh-old 2>/dev/null || :
  cd "$cwd" 2>/dev/null || cd /
  export NSH_LAB_IN_ROOT="$R"
  [ "$uid" = 0 ] && exec "$@"
  exec unshare --map-user="$uid" --map-group="$gid" -- "$@"
' sh "$uid" "$gid" "$@"
`;
}

/** A PATH entry for `name`: the root's binary, entering the root first unless already inside. */
export function wrapperScript(enterPath: string, target: string): string {
  return `#!/bin/sh
[ -n "\${NSH_LAB_IN_ROOT:-}" ] && exec ${q(target)} "$@"
exec ${q(enterPath)} ${q(target)} "$@"
`;
}
