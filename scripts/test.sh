#!/usr/bin/env bash
# Installs what the test suite needs (Debian packages when missing and allowed, a virtualenv
# with the package and its test extra) and runs the whole suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "SipSpeak needs Python 3.11 or newer (found: $("$PY" --version 2>&1))" >&2
    exit 1
fi

if [ "$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO=none; fi
apt_install() {
    # Best effort: a package the machine cannot install is reported, and the tests that need
    # it fail with a clear message instead of the whole run stopping here.
    if [ "$SUDO" = none ]; then
        echo "missing Debian packages (install them as root): $*" >&2
        return 0
    fi
    $SUDO apt-get update -qq || echo "apt-get update failed" >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
        || echo "could not install: $*" >&2
}

DEBS=(sip-tester baresip espeak-ng sox chromium chromium-driver)
if ! "$PY" -m venv --help >/dev/null 2>&1 || ! "$PY" -c 'import ensurepip' 2>/dev/null; then
    DEBS+=(python3-venv)
fi
# The C relay loop (sipspeak/media/_rtpfast.c) is built at install time; the suite checks it is.
command -v cc >/dev/null 2>&1 || DEBS+=(gcc libc6-dev)
"$PY" -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
    || DEBS+=(python3-dev)
missing=()
for pkg in "${DEBS[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"

if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'
exec .venv/bin/python -m pytest "$@"
