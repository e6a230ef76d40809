"""The deflate benchmark still runs (a few connections) and prints every figure."""

from __future__ import annotations

import sys
from pathlib import Path

from gevent import subprocess

ROOT = Path(__file__).resolve().parents[2]


def test_the_deflate_benchmark_runs() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "deflate.py"),
            "--connections",
            "5",
            "--broadcasts",
            "3",
        ],
        cwd=str(ROOT),
        capture_output=True,
        timeout=120,
        check=False,
    )
    output = result.stdout.decode()
    assert result.returncode == 0, output + result.stderr.decode()
    assert output.count("KiB, decompressor") == 5, output
    assert output.count("bytes on/off") == 3, output
    assert output.count("KiB per connection") == 5, output
    assert output.count("deflate's extra") == 3, output
