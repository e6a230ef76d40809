"""The recovery benchmark still runs (its smoke mode) and prints its figures."""

from __future__ import annotations

from tests.support.bench import run_bench


def test_the_recovery_benchmark_runs_in_smoke_mode() -> None:
    output = run_bench("recovery.py", "--smoke")
    for figure in ("recovery off", "recovery on", "adapter alone", "memory per buffered packet"):
        assert figure in output, output
