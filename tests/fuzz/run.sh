#!/usr/bin/env bash
# tests/fuzz/run.sh SECONDS [HARNESS...] - replay every kept crash input
# (tests/fuzz/regress/HARNESS/*), then run each libFuzzer harness for SECONDS
# from its seed corpus. A new crashing input lands in build/fuzz/crash-*:
# fix the bug, then keep the input under tests/fuzz/regress/HARNESS/.
# Prints one line per harness: "fuzz HARNESS: N execs in S s, ok|FAILED".
set -u
cd "$(dirname "$0")/../.."
secs=${1:-60}
shift || true
harnesses=${*:-model cifar args npy idx image npz}
rc=0
for h in $harnesses; do
    bin=build/fuzz/fuzz_$h
    if [ -d "tests/fuzz/regress/$h" ] && ls "tests/fuzz/regress/$h"/* >/dev/null 2>&1; then
        if ! "$bin" -runs=1 "tests/fuzz/regress/$h"/* >build/fuzz/regress_$h.log 2>&1; then
            echo "fuzz $h: a kept regression input fails again (build/fuzz/regress_$h.log)"
            rc=1
            continue
        fi
    fi
    mkdir -p "build/fuzz/corpus_$h"
    log=build/fuzz/run_$h.log
    "$bin" -max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536 \
        -artifact_prefix=build/fuzz/ -print_final_stats=1 \
        "build/fuzz/corpus_$h" "tests/fuzz/seed_$h" >"$log" 2>&1
    status=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    if [ $status = 0 ]; then
        echo "fuzz $h: ${execs:-?} execs in ${secs} s, ok"
    else
        echo "fuzz $h: FAILED after ${execs:-?} execs (see $log)"
        grep -E 'ERROR|SUMMARY' "$log" | head -3
        rc=1
    fi
done
exit $rc
