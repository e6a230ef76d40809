"""The benchmark suite's smoke mode: every scenario runs briefly against geventsio and
produces figures (``python bench/run.py --smoke --only geventsio``; no python-socketio).

Not a benchmark: it only checks that bench/ still works. It needs Node.js (skipped
without it) and installs bench/js's packages with ``npm ci`` on first use.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "bench" / "run.py"
SCENARIOS = ("echo", "binary", "broadcast", "connect", "idle", "polling")


@pytest.mark.timeout(90)
def test_smoke_mode_produces_numbers(tmp_path: Path) -> None:
    if shutil.which("node") is None:
        pytest.skip("Node.js is not installed: the load generator needs `node` (20+)")
    output = tmp_path / "bench.json"
    process = subprocess.run(
        [sys.executable, str(RUN), "--smoke", "--only", "geventsio", "--json", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert process.returncode == 0, process.stdout + process.stderr
    report = json.loads(output.read_text())
    assert report["mode"] == "smoke"
    results = {entry["name"]: entry["results"]["geventsio"] for entry in report["scenarios"]}
    for name in SCENARIOS:
        result = results[name]
        assert "error" not in result, (name, result)
        assert isinstance(result["rate"], (int, float)) and math.isfinite(result["rate"]), name
        if name != "idle":
            assert result["rate"] > 0, (name, result)
        assert result["generator_cpu"] >= 0, (name, result)
    assert "| echo" in process.stdout  # the table was printed
