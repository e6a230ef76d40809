"""bench/metrics_inprocess.py still runs against the current engine (a smoke check: it
times nothing, it only checks that the script works and prints its figures)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "metrics_inprocess.py"


def test_the_in_process_metrics_bench_runs() -> None:
    process = subprocess.run(
        [sys.executable, str(SCRIPT), "--rounds", "1", "--echoes", "300", "--loop", "1000"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert process.returncode == 0, process.stdout + process.stderr
    assert "the observer's own work" in process.stdout
    assert "least disturbed: off" in process.stdout
