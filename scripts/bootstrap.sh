#!/usr/bin/env bash
# Installs what the project needs, idempotently: a virtual environment with the package
# and its test dependencies, and the Node packages the tests and examples use.
# Sourced by scripts/test.sh and scripts/demo.sh; safe to run again and again.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3}"

say() { printf '[bootstrap] %s\n' "$*" >&2; }

if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi

stamp="$VENV/.geventsio-installed"
if [ ! -f "$stamp" ] || [ "$ROOT/setup.cfg" -nt "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
  say "installing Python dependencies"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$ROOT[test,flask,redis]"
  touch "$stamp"
fi

npm_install() {  # npm ci in a folder whose package-lock.json changed since the last install
  local dir="$1"
  [ -f "$dir/package-lock.json" ] || return 0
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    say "installing Node packages in ${dir#"$ROOT"/}"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

if command -v npm >/dev/null 2>&1; then
  for lock in "$ROOT"/tests/*/package-lock.json "$ROOT"/examples/*/package-lock.json \
              "$ROOT"/bench/*/package-lock.json; do
    [ -f "$lock" ] && npm_install "$(dirname "$lock")"
  done
else
  say "npm not found: the end-to-end tests and the demo page need Node.js 20 and npm"
fi

# Debian packages the tests use: installed when missing and we may (root, apt-get).
apt_updated=""
ensure_debian_package() {  # ensure_debian_package COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 && return 0
  [ -x "/usr/sbin/$1" ] && return 0  # not on a non-root user's PATH
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    if [ -z "$apt_updated" ]; then
      say "apt-get update"
      DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
      apt_updated=1
    fi
    say "installing the Debian package $2"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null
  else
    say "$1 is missing (Debian package $2): the tests that need it will say so"
  fi
}

ensure_debian_package redis-server redis-server   # the Redis tests
ensure_debian_package chromium chromium           # the browser tests (Playwright drives it)
ensure_debian_package nginx nginx                 # the load-balancer tests

# The hot path compiled with mypyc, in place (scripts/compile.sh; nothing to do when no
# source changed since the last build; GEVENTSIO_COMPILE=0 runs the sources instead).
VENV="$VENV" bash "$ROOT/scripts/compile.sh"
