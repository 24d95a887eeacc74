#!/usr/bin/env bash
# Proves the regression gate end to end on real measurements: a baseline run, then the same
# cases with ENCLAVE_BENCH_SLOWDOWN making our code (not the floor) 3x slower ("an artificially slowed build"),
# which `--compare --max-regression 10%` must reject with exit code 1. Then an unchanged rerun,
# which should pass (a warning only if it does not: this machine may be noisy).
#
#   npm run build && bash bench/self-test.sh          (about 20 s; not part of `npm test`)
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-$(mktemp -d)}"
mkdir -p "$out"
# Our cases and their floor: the gate compares each case relative to the floor measured beside it.
cases=(boundary --no-peers --filter '^(enclave|raw wasm floor) (16 B|4 KiB)$' --max-time 0.5)

node dist/bench/run.js "${cases[@]}" --json "$out/base.json" >/dev/null || { echo "self-test: the baseline run failed"; exit 1; }

ENCLAVE_BENCH_SLOWDOWN=boundary/enclave:3 node dist/bench/run.js "${cases[@]}" --json "$out/slow.json" \
  --compare "$out/base.json" --max-regression 10% >"$out/slow.md"
rc=$?
if [ "$rc" -ne 1 ]; then
  echo "self-test: FAIL: --compare exited $rc on a 3x slower run (expected 1); see $out/slow.md"
  exit 1
fi
echo "self-test: ok: --compare rejected the 3x slower run (exit 1)"
grep -E 'REGRESSION' "$out/slow.md" | sed 's/^/  /'

node dist/bench/run.js "${cases[@]}" --json "$out/same.json" --compare "$out/base.json" --max-regression 10% >"$out/same.md"
rc=$?
if [ "$rc" -eq 0 ]; then
  echo "self-test: ok: --compare passed the unchanged rerun (exit 0)"
else
  echo "self-test: warning: the unchanged rerun exited $rc (a noisy machine?); see $out/same.md"
fi
exit 0
