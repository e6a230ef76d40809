"""scripts/check_duplicates.py: CI's guard against a run of lines written twice."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "check_duplicates.py"

LOGIC = """
def {name}(items):
    total = 0
    for item in items:
        if item.ready:
            total += item.size
        else:
            total -= 1
    return total * 2
"""

SIGNATURE = """
def {name}(
    self,
    packet: bytes,
    options: dict,
    on_client_count: object,
    on_ack: object,
    timeout: float,
) -> int:
    return {value}
"""


def run_check(*roots: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, roots)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_run_of_six_lines_written_twice_fails_and_names_both_places(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(LOGIC.format(name="first"))
    (tmp_path / "b.py").write_text("x = 1\n" + LOGIC.format(name="second"))

    result = run_check(tmp_path)

    assert result.returncode == 1, result.stdout
    assert "a.py:3 repeats" in result.stdout and "b.py:4" in result.stdout


def test_distinct_code_and_shared_signatures_pass(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(SIGNATURE.format(name="first", value=1) + LOGIC.format(name="x"))
    (tmp_path / "b.py").write_text(SIGNATURE.format(name="second", value=2))

    result = run_check(tmp_path)

    assert result.returncode == 0, result.stdout
    assert "no run of 6+ lines repeated" in result.stdout


def test_the_packages_hold_no_repeated_run() -> None:
    result = run_check(ROOT / "geventsio", ROOT / "flask_ext")

    assert result.returncode == 0, result.stdout
