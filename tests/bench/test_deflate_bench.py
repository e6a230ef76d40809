"""The deflate benchmark still runs (a few connections) and prints every figure."""

from __future__ import annotations

from tests.support.bench import run_bench


def test_the_deflate_benchmark_runs() -> None:
    output = run_bench("deflate.py", "--connections", "5", "--broadcasts", "3", timeout=120)
    assert output.count("KiB, decompressor") == 5, output
    assert output.count("bytes on/off") == 3, output
    assert output.count("KiB per connection") == 5, output
    assert output.count("deflate's extra") == 3, output
