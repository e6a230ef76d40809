"""The serializers benchmark still runs (a few operations) and prints every figure."""

from __future__ import annotations

from tests.support.bench import run_bench


def test_the_serializers_benchmark_runs() -> None:
    output = run_bench("serializers.py", "--rounds", "1", "--number", "20")
    for shape in ("small text", "1 KiB text", "16 KiB binary"):
        for kind in ("echo", "broadcast"):
            assert any(line.startswith(shape) and kind in line for line in output.splitlines())
    assert output.count("msgpack/json") == 6, output
