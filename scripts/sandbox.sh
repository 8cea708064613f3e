#!/usr/bin/env bash
# Set up and start the stetgate sandbox: a working bank (test QTSP, demo PSUs and accounts,
# demo "phone" pages) on https://localhost:8443. Works on a fresh Debian 12 machine with
# Python 3.11. State lives in ./var (delete it to start over).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
exec .venv/bin/stetgate --data-dir "${STETGATE_DATA_DIR:-var}" sandbox "$@"
