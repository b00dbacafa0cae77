#!/usr/bin/env bash
# Runs every fuzz target (fuzz/) for SECONDS each (default 30) and prints its executions.
# A crash or failed property stops with the failing input and a non-zero exit.
# cargo-fuzz drives nightly-only compiler flags; RUSTC_BOOTSTRAP lets this stable toolchain
# accept them (no sanitizer is needed for safe Rust: the targets check properties).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-30}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1

for target in $(cargo fuzz list); do
    corpus=(corpus/"$target")
    mkdir -p "${corpus[0]}"
    # Real guests seed the validator.
    if [[ $target == validate ]]; then
        for d in ../build/guests/wasm32-wasip1 ../build/guests/wasm32-wasip2; do
            [[ -d $d ]] && corpus+=("$d")
        done
    fi
    if ! out=$(cargo fuzz run --sanitizer none "$target" "${corpus[@]}" -- \
            -max_total_time="$seconds" -print_final_stats=1 2>&1); then
        echo "$out" | tail -40
        echo "fuzz: $target FAILED"
        exit 1
    fi
    runs=$(grep -oE "stat::number_of_executed_units: *[0-9]+" <<<"$out" | grep -oE "[0-9]+$" || echo "?")
    echo "fuzz: $target: $runs executions in ${seconds}s, 0 crashes"
done
