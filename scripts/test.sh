#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine as root: installs, builds, tests.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
./node_modules/.bin/tsc --noEmit -p . || { echo "typecheck failed"; exit 1; }
out=$(mktemp)
./node_modules/.bin/bun test --timeout 120000 "$@" 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
pass=$(grep -Eo '^ *[0-9]+ pass' "$out" | tail -1 | grep -Eo '[0-9]+' || echo 0)
fail=$(grep -Eo '^ *[0-9]+ fail' "$out" | tail -1 | grep -Eo '[0-9]+' || echo 0)
rm -f "$out"
echo "tests: ${pass} passed, ${fail} failed"
exit "$status"
