#!/usr/bin/env bash
# Installs what nsh's tests and demo need on a fresh Debian 12 machine (as root), then builds nsh.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v nix-store >/dev/null || need+=(nix-bin)
command -v sshd >/dev/null || [ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null || need+=(openssh-client)
command -v flock >/dev/null || need+=(util-linux)
command -v ps >/dev/null || need+=(procps)
# The scheduler lab: a private single-node Slurm with slurmrestd (JWT).
command -v slurmctld >/dev/null || need+=(slurm-wlm)
command -v munged >/dev/null || need+=(munge)
command -v slurmrestd >/dev/null || need+=(slurmrestd)
# job-scheduler = slurm-native compiles its libslurm shim against slurm/slurm.h with the system compiler.
[ -e /usr/include/slurm/slurm.h ] || need+=(libslurm-dev)
command -v cc >/dev/null || need+=(gcc)
[ -e /usr/lib/x86_64-linux-gnu/slurm-wlm/auth_jwt.so ] || [ -e /usr/lib/aarch64-linux-gnu/slurm-wlm/auth_jwt.so ] || need+=(slurm-wlm-jwt-plugin)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  for i in 1 2 3 4 5; do
    if apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; then break; fi
    echo "setup: apt-get failed (attempt $i), retrying"; sleep 5
  done
fi
command -v nix-store >/dev/null || { echo "setup: nix-bin did not install" >&2; exit 1; }

if [ ! -x node_modules/.bin/bun ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build

# The PBS lab's OpenPBS, built once into /var/cache/nsh-lab (keyed by the source's hash; ~12-20 min cold,
# a second run only checks). Needs the source in ../shared/vendor/openpbs; NSH_SKIP_PBS_BUILD=1 skips it.
if [ "${NSH_SKIP_PBS_BUILD:-0}" = 1 ]; then
  echo "setup: skipping the OpenPBS build (NSH_SKIP_PBS_BUILD=1)"
else
  ./node_modules/.bin/bun test/lab/pbs-build.ts >/dev/null || echo "setup: OpenPBS not built: the PBS lab's tests will fail" >&2
fi
