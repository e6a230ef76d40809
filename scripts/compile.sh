#!/usr/bin/env bash
# Compiles geventsio's hot path with mypyc, in place: each module's C extension beside its
# source (setup.py's COMPILED_MODULES), which Python then imports instead of the source.
# Does nothing when no source under geventsio/ or flask_ext/ changed since the last build.
# The test suite and the demo run the compiled build; GEVENTSIO_TEST_BUILD=pure makes the
# tests import the sources instead (see tests/build.py). GEVENTSIO_COMPILE=0 skips compiling (and removes
# the extensions, so that the sources run).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${VENV:-$ROOT/.venv}/bin/python"
cd "$ROOT"
stamp="build/.compiled"
if [ "${GEVENTSIO_COMPILE:-1}" = "0" ]; then
  find geventsio flask_ext -name '*.so' -delete
  rm -f "$stamp"
  exit 0
fi
if [ -f "$stamp" ] && [ -z "$(find geventsio flask_ext setup.py -newer "$stamp" -name '*.py' -print -quit)" ]; then
  exit 0
fi
echo "[compile] mypyc: the hot path to C (about a minute)" >&2
mkdir -p build
GEVENTSIO_COMPILE=1 "$PY" setup.py --quiet build_ext --inplace --parallel 2 >build/compile.log 2>&1 \
  || { cat build/compile.log >&2; exit 1; }
touch "$stamp"
