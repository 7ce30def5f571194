#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine as root: installs, builds, tests.
# Part 1: every test on the host's Nix 2.8 and Slurm 22.05 (bookworm).
# Part 2: a subset on the newer Nix and Slurm of Debian trixie (Nix 2.26, Slurm 24.11) and sid (Nix 2.34,
# Slurm 26.05), after building their roots (~2 min each, cached in /var/cache/nsh-lab/roots): each
# Slurm backend end to end, an IFD under nix-sigstop, failure statuses, and (sid) the external builder.
# The whole matrix is scripts/test-matrix.sh. NSH_TEST_SUITES="" skips part 2; "sid" runs only sid.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
./node_modules/.bin/tsc --noEmit -p . || { echo "typecheck failed"; exit 1; }
bun=./node_modules/.bin/bun
out=$(mktemp)
failed=$(mktemp)
trap 'rm -f "$out" "$failed"' EXIT
count() { grep -Eo "^ *[0-9]+ $1" "$2" | tail -1 | grep -Eo '[0-9]+' || echo 0; }

"$bun" test --timeout 120000 "$@" 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
pass=$(count pass "$out")
fail=$(count fail "$out")
# Each failure with its file; bun's own summary after "N tests failed:" repeats them without one.
awk '/^[0-9]+ tests? failed:$/ {exit} /^test\/.*:$/ {file = $0} /^\(fail\)/ {print "bookworm: " file " " $0}' \
  "$out" >>"$failed"
echo "bookworm: ${pass} passed, ${fail} failed"

suites=(${NSH_TEST_SUITES-trixie sid})
subset=(
  test/hook-slurm/backend-slurm.test.ts
  test/hook-slurm/backend-slurm-cli.test.ts
  test/hook-slurm/backend-slurm-native.test.ts
  test/hook-slurm/sigstop-ifd.test.ts
  test/hook-slurm/failure-status.test.ts
  test/sigstop/fail-ifd-build.test.ts
)
if [ ${#suites[@]} -gt 0 ] && [ $# -eq 0 ]; then
  # The roots first (built if missing), checked: a root that cannot be built fails here, loudly.
  NSH_LAB_ROOTS="${suites[*]}" "$bun" test --timeout 1800000 test/lab-selftest/roots.test.ts 2>&1 | tee "$out"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  pass=$((pass + $(count pass "$out"))) fail=$((fail + $(count fail "$out")))
  for suite in "${suites[@]}"; do
    files=("${subset[@]}")
    [ "$suite" != sid ] || files+=(test/hook-slurm/external-builder-slurm.test.ts) # Nix >= 2.32 only
    for f in "${files[@]}"; do
      echo "== $suite: $f"
      NSH_LAB_SUITE=$suite "$bun" test --timeout 120000 "$f" 2>&1 | tee "$out"
      [ "${PIPESTATUS[0]}" -eq 0 ] || { status=1; echo "FAILED on $suite: $f"; echo "$suite: $f failed" >>"$failed"; }
      pass=$((pass + $(count pass "$out"))) fail=$((fail + $(count fail "$out")))
    done
  done
fi
# The failures again at the very end, where a truncated CI log still shows them.
[ ! -s "$failed" ] || { echo "failed tests:"; cat "$failed"; }
echo "tests: ${pass} passed, ${fail} failed"
exit "$status"
