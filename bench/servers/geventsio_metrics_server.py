"""The geventsio server under test with its Prometheus metrics on.

The same application as ``geventsio_server.py``, served the same way, built with
``WSGIApp(..., metrics_path="/metrics")``: every session, packet and handler is counted.
``bench/run.py --only geventsio,metrics`` reports its overhead over the plain server.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common
from geventsio_server import build_app


def main() -> None:
    _common.serve_on_geventsio_runner(build_app(metrics_path="/metrics"))


if __name__ == "__main__":
    main()
