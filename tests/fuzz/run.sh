#!/bin/sh
# run.sh — runs each named libFuzzer harness (built by `make fuzz-build` into
# $FUZZ_BUILD) for $FUZZ_SECONDS seconds, seeded from tests/fuzz/corpus/<name>/
# and tests/fuzz/regressions/<name>/ (read only; new inputs go to
# $FUZZ_BUILD/corpus/<name>/). Prints one line per harness with libFuzzer's
# final execution count (stat::number_of_executed_units); on a crash, leak,
# timeout or out-of-memory it prints the log's tail and the saved input, and
# the script exits 1 after running the rest.
# FUZZ_JOBS=N runs N processes per harness side by side (seeds 1..N, one
# shared corpus folder) and reports the sum of their executions.
# Usage: FUZZ_BUILD=build/fuzz FUZZ_SECONDS=60 [FUZZ_JOBS=1] sh tests/fuzz/run.sh NAME...
set -u
B=${FUZZ_BUILD:-build/fuzz}
S=${FUZZ_SECONDS:-60}
J=${FUZZ_JOBS:-1}
failed=""
for name in "$@"; do
    bin="$B/fuzz_$name"
    if [ ! -x "$bin" ]; then
        echo "fuzz $name: $bin not built" >&2
        failed="$failed $name"
        continue
    fi
    work="$B/corpus/$name"
    art="$B/artifacts/$name"
    log="$B/$name.log"
    rm -f "$log".*
    mkdir -p "$work" "$art"
    set --
    [ -f "tests/fuzz/$name.dict" ] && set -- "$@" "-dict=tests/fuzz/$name.dict"
    # The CLI harness prints a line per input; keep the log readable.
    [ "$name" = args ] && set -- "$@" -close_fd_mask=3
    seeds=""
    for d in "tests/fuzz/corpus/$name" "tests/fuzz/regressions/$name"; do
        [ -d "$d" ] && seeds="$seeds $d"
    done
    # -timeout: one input taking > 10 s is a bug (a hang); -rss_limit_mb: a
    # small file must not make a reader allocate gigabytes.
    pids=""
    j=1
    while [ "$j" -le "$J" ]; do
        # shellcheck disable=SC2086
        UBSAN_OPTIONS=print_stacktrace=1 "$bin" "$@" -seed="$j" -max_total_time="$S" -print_final_stats=1 \
            -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$art/" "$work" $seeds >"$log.$j" 2>&1 &
        pids="$pids $!"
        j=$((j + 1))
    done
    rc=0
    bad_log=""
    j=1
    for p in $pids; do
        wait "$p" || { rc=$?; bad_log="$log.$j"; }
        j=$((j + 1))
    done
    execs=$(cat "$log".* | sed -n 's/^stat::number_of_executed_units: *//p' | awk '{s += $1} END {print s + 0}')
    if [ "$rc" -eq 0 ]; then
        echo "fuzz $name: $execs executions in $S s ($J process(es), $((execs / S))/s), no crash"
    else
        echo "fuzz $name: FAILED (exit $rc) after $execs executions; log $bad_log"
        tail -n 40 "$bad_log"
        ls -l "$art"
        failed="$failed $name"
    fi
done
if [ -n "$failed" ]; then
    echo "fuzz: failed:$failed (inputs under $B/artifacts/<name>/; keep each fixed one in tests/fuzz/regressions/<name>/)"
    exit 1
fi
