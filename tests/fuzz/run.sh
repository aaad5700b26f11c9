#!/usr/bin/env bash
# tests/fuzz/run.sh SECONDS - run each libFuzzer harness for SECONDS from the
# seed corpus (crashing inputs land in build/fuzz/crash-*; keep each one
# under tests/fuzz/regress/ once fixed: make check replays them).
set -u
cd "$(dirname "$0")/../.."
secs=${1:-60}
rc=0
for h in model cifar; do
    mkdir -p "build/fuzz/corpus_$h"
    build/fuzz/fuzz_$h -max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536 \
        -artifact_prefix=build/fuzz/ -print_final_stats=1 \
        "build/fuzz/corpus_$h" "tests/fuzz/seed_$h" 2>&1 | grep -E 'stat::number_of_executed_units|ERROR|SUMMARY|Done' || true
    [ "${PIPESTATUS[0]}" = 0 ] || rc=1
done
exit $rc
