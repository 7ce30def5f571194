#!/usr/bin/env bash
# The version matrix: the lab-backed suites on the newer Nix and Slurm of Debian trixie and sid
# (test/lab/roots.ts builds each root once with debootstrap, ~2 min, cached in /var/cache/nsh-lab/roots).
#   bash scripts/test-matrix.sh                      # suites trixie and sid, the default test dirs
#   bash scripts/test-matrix.sh sid                  # one suite (bookworm: the host's Nix 2.8 / Slurm 22.05)
#   NSH_MATRIX_DIRS="test/sigstop" bash scripts/test-matrix.sh trixie
# Each test file runs on its own (so one file's failure is reported as that file's), niced.
# Logs and summary.md go to NSH_MATRIX_OUT (default /tmp/nsh-matrix-<time>). Exit status 1 when a file failed.
set -uo pipefail
cd "$(dirname "$0")/.."
# (NSH_MATRIX_NO_SETUP=1: skip the install-and-build step, e.g. while another matrix run uses dist/)
[ -n "${NSH_MATRIX_NO_SETUP:-}" ] || bash scripts/setup.sh || exit 1

suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(trixie sid)
dirs=(${NSH_MATRIX_DIRS:-test/hook test/hook-slurm test/sigstop test/schedulers})
out=${NSH_MATRIX_OUT:-/tmp/nsh-matrix-$(date -u +%Y%m%dT%H%M%S)}
mkdir -p "$out"
bun=./node_modules/.bin/bun
summary="$out/summary.md"
echo "| suite | file | pass | fail | seconds | first failure |" > "$summary"
echo "|---|---|---|---|---|---|" >> "$summary"

# Build the roots (and check them) first: the self-test fails loudly if a root cannot be built.
roots=$(printf '%s\n' "${suites[@]}" | grep -vx bookworm | tr '\n' ' ')
[ -z "$roots" ] || NSH_LAB_ROOTS="$roots" nice -n 10 "$bun" test --timeout 1800000 test/lab-selftest/roots.test.ts \
  > "$out/roots.log" 2>&1 || { echo "roots self-test failed: see $out/roots.log"; tail -20 "$out/roots.log"; exit 1; }
[ -z "$roots" ] || grep '^\[roots\]' "$out/roots.log"

status=0
for suite in "${suites[@]}"; do
  for f in $(find "${dirs[@]}" -name '*.test.ts' | sort); do
    log="$out/$suite/${f//\//_}.log"
    mkdir -p "$out/$suite"
    t0=$(date +%s)
    NSH_LAB_SUITE=$suite nice -n 10 "$bun" test --timeout 120000 "$f" > "$log" 2>&1
    rc=$?
    secs=$(( $(date +%s) - t0 ))
    pass=$(grep -Eo '^ *[0-9]+ pass' "$log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
    fail=$(grep -Eo '^ *[0-9]+ fail' "$log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
    first=""
    if [ "$rc" -ne 0 ]; then
      status=1
      first=$(grep -m1 -E '^\(fail\)' "$log" | cut -c1-140)
      why=$(grep -m1 -E '^(error|Error|[A-Za-z]*Error)[: ]' "$log" | cut -c1-160)
      detail=$(grep -m1 -E '^(Expected|Received)' "$log" | cut -c1-160)
      first="${first:-exit $rc} — ${why}${detail:+ / $detail}"
    fi
    line="| $suite | $f | $pass | $fail | $secs | ${first//|/\\|} |"
    echo "$line" | tee -a "$summary"
  done
done
echo "summary: $summary"
exit "$status"
