#!/usr/bin/env bash
# Installs SipSpeak into a virtualenv (.venv) and starts it on the embedded SQLite default.
# The URL is printed; on the very first start, so is the first admin's login and password.
# Extra arguments go to `sipspeak serve` (for example --web 0.0.0.0:8080).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "SipSpeak needs Python 3.11 or newer (found: $("$PY" --version 2>&1))" >&2
    exit 1
fi
if ! "$PY" -m venv --help >/dev/null 2>&1 || ! "$PY" -c 'import ensurepip' 2>/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    else
        echo "python3-venv is missing: sudo apt-get install python3-venv" >&2
        exit 1
    fi
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q .
exec .venv/bin/sipspeak serve --config config/sipspeak.toml "$@"
