"""The Redis broadcast benchmark still runs (its one-second smoke mode)."""

from __future__ import annotations

from tests.support.bench import run_bench


def test_the_benchmark_runs_in_smoke_mode(redis_url: str) -> None:
    output = run_bench("redis_broadcast.py", "--smoke", "--redis", redis_url)
    assert "cross-node (A -> Redis -> B)" in output
    assert "broadcasts/s" in output
