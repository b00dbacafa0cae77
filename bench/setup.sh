#!/usr/bin/env bash
# What the benchmarks need beyond scripts/setup.sh: wasmtime's CLI (for `wasmtime serve` in
# bench/wasi_http.py), the same version as the host's wasmtime crates, built once into
# target/bench-tools. Never part of the tests: it takes a long build.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n 's/^wasmtime = { version = "=\([0-9.]*\)".*/\1/p' Cargo.toml)
if ! target/bench-tools/bin/wasmtime --version 2>/dev/null | grep -q "^wasmtime $version\b"; then
    cargo install wasmtime-cli --version "=$version" --locked --root target/bench-tools
fi
target/bench-tools/bin/wasmtime --version
