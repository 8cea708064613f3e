#!/usr/bin/env bash
# Set up and start the stetgate sandbox: a working bank (test QTSP, demo PSUs and accounts,
# demo "phone" pages) on https://localhost:8443 and a demo TPP on https://localhost:8444. Works
# on a fresh Debian 12 machine with Python 3.11. State lives in ./var (delete it to start over).
# `exec`: the sandbox itself gets Ctrl-C/SIGTERM and stops its children (logs in ./var/logs).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  if ! python3 -m venv .venv 2>/dev/null; then
    # Debian's python3 ships venv/ensurepip separately.
    rm -rf .venv
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    fi
    python3 -m venv .venv || { echo "python3 -m venv failed: install python3-venv" >&2; exit 1; }
  fi
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
exec .venv/bin/stetgate --data-dir "${STETGATE_DATA_DIR:-var}" sandbox "$@"
