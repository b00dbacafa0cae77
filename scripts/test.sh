#!/usr/bin/env bash
# Installs what is missing, builds the module and the guests, and runs every test:
# host unit tests (cargo), end-to-end tests against a real apache2 (pytest), and a short
# run of each fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
make all

# The C header is generated from the Rust API and committed; a stale one fails here.
if git rev-parse --git-dir >/dev/null 2>&1; then
    git diff --exit-code -- mod_wasm/include/mod_wasm_ffi.h \
        || { echo "mod_wasm/include/mod_wasm_ffi.h changed: commit the regenerated header"; exit 1; }
fi

cargo test --release -p mod_wasm_host --features testing
# The SDK's own unit tests (Replace) and the examples' (scanner, JSON validator, time ranges),
# built natively.
CARGO_TARGET_DIR="$PWD/target/native" cargo test --release --manifest-path sdk-rust/Cargo.toml
(cd sdk-examples && CARGO_TARGET_DIR="$PWD/../target/native" cargo test --release \
    --target "$(rustc -vV | sed -n 's/^host: //p')" -p html-inject -p redact-email -p json-guard -p office-hours -p rate-limit -p session-login)
python3 -m pytest -q tests/ "$@"

# A short bounded run of every fuzz target (scripts/fuzz.sh 300 for a longer one).
scripts/fuzz.sh "${FUZZ_SECONDS:-15}"
