#!/usr/bin/env bash
# The engine tests on the oldest gevent setup.cfg allows (the newest is the one in .venv,
# where the whole suite runs): geventsio reaches into gevent's internals in
# geventsio/engine/gevent_private.py, checked for both ends of that range.
#
# A separate venv, .venv-gevent-oldest, holds only that gevent; everything else comes
# from .venv (a .pth file adds .venv's site-packages after its own), so it takes seconds.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
OLD="$ROOT/.venv-gevent-oldest"
oldest="$(sed -n 's/^[[:space:]]*gevent>=\([0-9.]*\).*/\1/p' "$ROOT/setup.cfg" | head -n1)"
[ -n "$oldest" ] || { echo "no 'gevent>=' in setup.cfg" >&2; exit 1; }
if [ ! -x "$OLD/bin/python" ] || [ "$("$OLD/bin/python" -c 'import gevent; print(gevent.__version__)' 2>/dev/null)" != "$oldest" ]; then
  rm -rf "$OLD"
  "$VENV/bin/python" -m venv --without-pip "$OLD"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    --target "$("$OLD/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
    "gevent==$oldest" "greenlet>=3"
fi
site="$("$OLD/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
main_site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "import site; site.addsitedir('$main_site')" > "$site/zz-geventsio-venv.pth"
cd "$ROOT"
"$OLD/bin/python" -c 'import gevent; print("gevent", gevent.__version__, "from", gevent.__file__)'
exec "$OLD/bin/python" -m pytest -p no:cacheprovider -q tests/engine "$@"
