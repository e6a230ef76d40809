"""The Redis broadcast benchmark still runs (its one-second smoke mode)."""

from __future__ import annotations

import sys

from gevent import subprocess

from tests.redis.harness import REPO


def test_the_benchmark_runs_in_smoke_mode(redis_url: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "redis_broadcast.py"),
            "--smoke",
            "--redis",
            redis_url,
        ],
        cwd=str(REPO),
        capture_output=True,
        timeout=60,
        check=False,
    )
    output = result.stdout.decode()
    assert result.returncode == 0, output + result.stderr.decode()
    assert "cross-node (A -> Redis -> B)" in output
    assert "broadcasts/s" in output
