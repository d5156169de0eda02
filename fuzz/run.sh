#!/usr/bin/env bash
# Runs one fuzz target until it has used CPU_S seconds of CPU or WALL_S seconds have
# passed, niced (the machine is shared), and prints what docs/FUZZING.md records:
# CPU seconds actually used, libFuzzer's final stats (executions, cov, ft, corpus).
#
#   bash fuzz/run.sh TARGET [CPU_S=1800] [WALL_S=7200]
#
# Build first: cargo +nightly fuzz build -s none (from the repository root).
set -euo pipefail
target=$1
cpu_budget=${2:-1800}
wall=${3:-7200}
here=$(cd "$(dirname "$0")" && pwd)
bin=$here/target/x86_64-unknown-linux-gnu/release/$target
case $target in
    token) dict= ;;
    head) dict=-dict=$here/dict/head.dict ;;
    message | command) dict=-dict=$here/dict/json.dict ;;
    config) dict=-dict=$here/dict/toml.dict ;;
    *) echo "unknown target $target" >&2; exit 2 ;;
esac
mkdir -p "$here/artifacts/$target"
log=${LOG:-$here/artifacts/$target.log}
# libFuzzer: wall limit, stats at the end, crashes kept under artifacts/.
nice -n 19 "$bin" "$here/corpus/$target" $dict -max_total_time="$wall" -print_final_stats=1 \
    -max_len=8192 -artifact_prefix="$here/artifacts/$target/" >"$log" 2>&1 &
pid=$!
ticks=$(getconf CLK_TCK)
cpu_s() {
    # utime + stime of the fuzzer (fields 14 and 15 of /proc/PID/stat), in seconds.
    awk -v t="$ticks" '{ print int(($14 + $15) / t) }' "/proc/$pid/stat" 2>/dev/null || echo -1
}
used=0
while kill -0 "$pid" 2>/dev/null; do
    now=$(cpu_s)
    [ "$now" -ge 0 ] && used=$now
    if [ "$used" -ge "$cpu_budget" ]; then
        kill -INT "$pid"
        break
    fi
    sleep 5
done
wait "$pid" || true
echo "target=$target cpu_s=$used corpus_files=$(ls "$here/corpus/$target" | wc -l)"
grep -E "stat::|#[0-9]+ +(DONE|INITED)|ERROR|panicked" "$log" | tail -20 || true
