"""Running a bench/ script as the smoke tests do: its own process, bounded, output back."""

from __future__ import annotations

import sys
from pathlib import Path

from gevent import subprocess

ROOT = Path(__file__).resolve().parents[2]


def run_bench(script: str, *args: str, timeout: float = 60) -> str:
    """Run ``bench/<script>`` with ``args`` from the repository root; its standard output.

    Fails the test (with both outputs) when the script exits with an error.
    """
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        cwd=str(ROOT),
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    output: str = result.stdout.decode()
    assert result.returncode == 0, output + result.stderr.decode()
    return output
