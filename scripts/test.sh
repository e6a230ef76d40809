#!/usr/bin/env bash
# Runs the whole test suite (installing what is missing first): lint, layer contracts,
# then pytest. Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
echo "== ruff"
"$VENV/bin/ruff" check geventsio flask_ext tests examples scripts
echo "== no repeated runs of 6+ lines in the packages"
"$VENV/bin/python" scripts/check_duplicates.py geventsio flask_ext
echo "== import contracts"
"$VENV/bin/lint-imports"
echo "== mypy --strict"
"$VENV/bin/mypy"
# The Redis tests use the Redis at 127.0.0.1:6379: start one when none answers.
if command -v redis-server >/dev/null 2>&1 && ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  echo "== starting redis-server on 127.0.0.1:6379"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --logfile "$ROOT/.venv/redis.log" --dir "$ROOT/.venv"
fi
echo "== pytest (the compiled build: what a wheel built with GEVENTSIO_COMPILE=1 runs)"
build=compiled
[ "${GEVENTSIO_COMPILE:-1}" = "0" ] && build=pure
GEVENTSIO_TEST_BUILD=$build "$VENV/bin/python" -m pytest -p no:cacheprovider "$@"
# The same sources as pure Python (what an install without GEVENTSIO_COMPILE=1 runs): the
# tests of the compiled layers, in this process only (the servers tests start in processes
# of their own ran above). Skipped when pytest was given arguments (a targeted run).
if [ "$build" = compiled ] && { [ "$#" -eq 0 ] || [ "$*" = "-q" ]; }; then
  echo "== pytest tests/protocol tests/engine tests/server tests/flask_ext tests/tooling on the pure-Python build"
  GEVENTSIO_TEST_BUILD=pure "$VENV/bin/python" -m pytest -p no:cacheprovider -q \
    tests/protocol tests/engine tests/server tests/flask_ext tests/tooling
fi
# flask_ext against the oldest Flask it supports (setup.cfg's lower bound); the run above
# has the newest (the install takes the latest release). Only tests/flask_ext, with that
# one package installed beside the venv's and put first on the path. Skipped when pytest
# was given arguments (a targeted run).
OLDEST_FLASK=3.0.0
if [ "$#" -eq 0 ] || [ "$*" = "-q" ]; then
  OLDEST_DIR="$VENV/flask-$OLDEST_FLASK"
  if [ ! -f "$OLDEST_DIR/flask/__init__.py" ]; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
      --target "$OLDEST_DIR" "flask==$OLDEST_FLASK"
  fi
  echo "== pytest tests/flask_ext on Flask $OLDEST_FLASK (the run above: Flask $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("flask"))'))"
  PYTHONPATH="$OLDEST_DIR" "$VENV/bin/python" -m pytest -p no:cacheprovider -q tests/flask_ext
fi
