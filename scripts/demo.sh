#!/usr/bin/env bash
# Installs what is missing, builds the module and the examples, and starts a demo httpd on
# http://127.0.0.1:8080/ (PORT=... to change it). Stop it with: scripts/demo.sh stop
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-start}" == "stop" ]]; then
    exec python3 scripts/demo.py stop
fi
scripts/setup.sh
make all
python3 scripts/demo.py start "${PORT:-8080}"
