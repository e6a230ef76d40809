"""The recovery benchmark still runs (its smoke mode) and prints its figures."""

from __future__ import annotations

import sys
from pathlib import Path

from gevent import subprocess

ROOT = Path(__file__).resolve().parents[2]


def test_the_recovery_benchmark_runs_in_smoke_mode() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "recovery.py"), "--smoke"],
        cwd=str(ROOT),
        capture_output=True,
        timeout=60,
        check=False,
    )
    output = result.stdout.decode()
    assert result.returncode == 0, output + result.stderr.decode()
    for figure in ("recovery off", "recovery on", "adapter alone", "memory per buffered packet"):
        assert figure in output, output
