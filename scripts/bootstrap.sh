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
  for dir in "$ROOT"/tests/js "$ROOT"/examples/*/; do
    npm_install "${dir%/}"
  done
else
  say "npm not found: the end-to-end tests and the demo page need Node.js 20 and npm"
fi
