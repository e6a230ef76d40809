"""The bench application as a module-level WSGI app, for servers that import one
(``gunicorn paths_app:app``, ``pywsgi_gws_server.py``): see bench/serving_paths.py."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from geventsio_server import build_app

app = build_app()
