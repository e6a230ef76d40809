"""The serializers benchmark still runs (a few operations) and prints every figure."""

from __future__ import annotations

import sys
from pathlib import Path

from gevent import subprocess

ROOT = Path(__file__).resolve().parents[2]


def test_the_serializers_benchmark_runs() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "serializers.py"), "--rounds", "1", "--number", "20"],
        cwd=str(ROOT),
        capture_output=True,
        timeout=60,
        check=False,
    )
    output = result.stdout.decode()
    assert result.returncode == 0, output + result.stderr.decode()
    for shape in ("small text", "1 KiB text", "16 KiB binary"):
        for kind in ("echo", "broadcast"):
            assert any(line.startswith(shape) and kind in line for line in output.splitlines())
    assert output.count("msgpack/json") == 6, output
