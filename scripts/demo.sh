#!/usr/bin/env bash
# Starts the demo: the chat example, in memory, on http://127.0.0.1:5000/ (installing
# what is missing first). Open that address in two browser windows. Ctrl-C stops it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
exec "$VENV/bin/python" examples/chat/app.py "$@"
