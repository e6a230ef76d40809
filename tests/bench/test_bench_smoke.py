"""The benchmark suite's smoke mode: every scenario runs briefly against geventsio,
flask_ext and the Node reference and produces figures (``python bench/run.py --smoke
--only geventsio,flask_ext,node``; no python-socketio), flask_ext's overhead over the core
is reported, and every figure as a ratio to Node.

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
SERVERS = ("geventsio", "flask_ext", "node")


@pytest.mark.timeout(180)
def test_smoke_mode_produces_numbers(tmp_path: Path) -> None:
    if shutil.which("node") is None:
        pytest.skip("Node.js is not installed: the load generator needs `node` (20+)")
    output = tmp_path / "bench.json"
    process = subprocess.run(
        [sys.executable, str(RUN), "--smoke", "--only", ",".join(SERVERS), "--json", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert process.returncode == 0, process.stdout + process.stderr
    report = json.loads(output.read_text())
    assert report["mode"] == "smoke"
    entries = {entry["name"]: entry for entry in report["scenarios"]}
    for name in SCENARIOS:
        for server in SERVERS:
            result = entries[name]["results"][server]
            assert "error" not in result, (name, server, result)
            rate = result["rate"]
            assert isinstance(rate, (int, float)) and math.isfinite(rate), (name, server)
            if name != "idle":
                assert rate > 0, (name, server, result)
            assert result["generator_cpu"] >= 0, (name, server, result)
        for server in ("geventsio", "flask_ext"):
            to_node = entries[name]["ratios"][f"{server}/node"]
            assert isinstance(to_node, float) and to_node > 0, (name, server, to_node)
        assert entries[name]["node_floor"] is not None, name
        assert isinstance(entries[name]["meets_node_floor"], bool), entries[name]
        overhead = entries[name]["overhead"]["flask_ext"]
        assert overhead["over"] == "geventsio"
        assert math.isfinite(overhead["rate"]) and isinstance(overhead["meets"], bool), overhead
    assert "| echo" in process.stdout  # the table was printed
    assert "overhead over the core" in process.stdout
    assert "g/n" in process.stdout  # the ratios to Node
