#!/usr/bin/env bash
# Set up and run the whole stetgate test suite (SQLite + PostgreSQL, real TLS, real browser).
# Works on a fresh Debian 12 machine with Python 3.11: creates .venv, installs the package with
# its dev extras, installs Debian's Chromium when run as root (browser tests skip with a reason
# otherwise), starts the local PostgreSQL cluster if it is installed but down (PostgreSQL tests
# skip with a reason when none is reachable), then runs pytest with any extra arguments.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "== installing Debian's chromium for browser tests"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

if command -v pg_lsclusters >/dev/null 2>&1; then
  pg_lsclusters --no-header 2>/dev/null | while read -r ver cluster _port status _rest; do
    if [ "$status" != "online" ] && [ "$(id -u)" = 0 ]; then
      echo "== starting PostgreSQL $ver/$cluster"
      pg_ctlcluster --skip-systemctl-redirect "$ver" "$cluster" start || true
    fi
  done
fi

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
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'

exec .venv/bin/python -m pytest "$@"
