#!/usr/bin/env bash
# The demo on the local lab (real Nix 2.8, its own store and daemon): nix-sigstop stops a
# memory-hungry evaluation while its import-from-derivation builds run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec ./node_modules/.bin/bun scripts/demo.ts "$@"
