#!/usr/bin/env bash
# Set up and run the whole stetgate test suite (SQLite + PostgreSQL, real TLS, real browser).
# Works on a fresh Debian 12 machine with Python 3.11: creates .venv, installs the package with
# its dev extras, installs Debian's Chromium and nginx when run as root (browser and nginx tests
# skip with a reason otherwise; tests/integration/test_nginx.py runs /usr/sbin/nginx as its own
# child process with its own configuration, never the nginx service), starts the local
# PostgreSQL cluster if it is installed but down (PostgreSQL tests skip with a reason when none
# is reachable), then runs pytest with any extra arguments.
#
# STETGATE_TEST_FAKETIME, a libfaketime offset such as "+400d" or "+39439675s", runs pytest under
# Debian's libfaketime with the clock moved by it (servers and browsers the tests start
# included; use an offset, not an "@date", which restarts in every new process). faketime is
# installed like chromium when run as root, and its absence is an error. Setup (venv, pip) runs
# on the real clock. Pair it with STETGATE_TEST_DATABASES=sqlite: the PostgreSQL server's clock
# is not moved.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "== installing Debian's chromium for browser tests"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

if [ ! -x /usr/sbin/nginx ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "== installing Debian's nginx for the reverse-proxy tests"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
fi

if [ -n "${STETGATE_TEST_FAKETIME:-}" ]; then
  case "$STETGATE_TEST_FAKETIME" in
    [+-][0-9]*) ;;
    *) echo "STETGATE_TEST_FAKETIME=$STETGATE_TEST_FAKETIME: give an offset such as +400d" >&2; exit 1 ;;
  esac
  if ! command -v faketime >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing Debian's faketime for the date-shifted run"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq faketime >/dev/null
  fi
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

if [ -n "${STETGATE_TEST_FAKETIME:-}" ]; then
  if ! command -v faketime >/dev/null; then
    echo "STETGATE_TEST_FAKETIME is set but faketime is missing: apt-get install faketime" >&2
    exit 1
  fi
  echo "== pytest under faketime -f '$STETGATE_TEST_FAKETIME' (now: $(faketime -f "$STETGATE_TEST_FAKETIME" date -u '+%F %T UTC'))"
  # Monotonic clocks stay real (timed waits hang on a faked one); scripts/faketime/ works around
  # this libfaketime's time.sleep bug in every Python process of the run.
  export FAKETIME_DONT_FAKE_MONOTONIC=1 PYTHONPATH="$PWD/scripts/faketime${PYTHONPATH:+:$PYTHONPATH}"
  exec faketime -f "$STETGATE_TEST_FAKETIME" .venv/bin/python -m pytest "$@"
fi
exec .venv/bin/python -m pytest "$@"
