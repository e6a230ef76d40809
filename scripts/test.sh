#!/usr/bin/env bash
# Runs the whole test suite (installing what is missing first): lint, layer contracts,
# then pytest. Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
echo "== ruff"
"$VENV/bin/ruff" check geventsio flask_ext tests examples
echo "== import contracts"
"$VENV/bin/lint-imports"
echo "== pytest"
"$VENV/bin/python" -m pytest -p no:cacheprovider "$@"
