#!/usr/bin/env bash
# Long libFuzzer runs of built targets, at most JOBS at a time, niced.
#
#   fuzz/long-run.sh SECONDS [TARGET...]     # default: every target
#
# Run from the repository root after `RUSTC_BOOTSTRAP=1 cargo fuzz build`.
# Each target runs from fuzz/corpus/<t> (created; git-ignored) plus its
# seeds and regressions, writes crashes to fuzz/artifacts/<t>/ and its log
# to fuzz/target/logs/<t>.log (git-ignored, like fuzz/target); the summary line per target
# (executions, cov, ft, corpus, crashes) goes to fuzz/target/logs/summary.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:?usage: $0 SECONDS [TARGET...]}"
shift
jobs="${JOBS:-2}"
bin=fuzz/target/x86_64-unknown-linux-gnu/release
if [ "$#" -gt 0 ]; then targets=("$@"); else
    mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^vine-fuzz-targets$')
fi
mkdir -p fuzz/target/logs
one() {
    local t="$1" seconds="$2" bin="$3"
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    local extra=()
    [ -d "fuzz/regressions/$t" ] && extra+=("fuzz/regressions/$t")
    [ -f "fuzz/dicts/$t.dict" ] && extra=("-dict=fuzz/dicts/$t.dict" "${extra[@]}")
    local rc=0
    nice -n 19 "$bin/$t" -max_total_time="$seconds" -timeout=25 -print_final_stats=1 \
        -max_len="${MAX_LEN:-4096}" -len_control="${LEN_CONTROL:-0}" \
        -artifact_prefix="fuzz/artifacts/$t/" "fuzz/corpus/$t" "fuzz/seeds/$t" "${extra[@]}" \
        > "fuzz/target/logs/$t.log" 2>&1 || rc=$?
    local last execs
    last=$(grep -E '^#[0-9]+' "fuzz/target/logs/$t.log" | tail -1 || true)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "fuzz/target/logs/$t.log" | tail -1)
    echo "$t rc=$rc executed_units=${execs:-?} last: $last" >> fuzz/target/logs/summary.txt
}
export -f one
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'one "$@"' _ {} "$seconds" "$bin"
cat fuzz/target/logs/summary.txt
