"""bench/soak.py, briefly: both forms of the server, churning and hostile clients, a
Redis restart, and not one canary error or server traceback.

Not the soak (that is ``python bench/soak.py``, minutes long): it only checks that the
soak still runs and that the hostile inputs it rotates through hurt nobody.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOAK = ROOT / "bench" / "soak.py"


@pytest.mark.timeout(240)
def test_a_short_soak_of_both_forms_sees_no_error() -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("the soak starts a redis-server of its own")
    command = [sys.executable, str(SOAK), "--minutes", "0.25", "--clients", "100", "--pace", "2"]
    process = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=200)
    output = process.stdout
    assert process.returncode == 0, output + process.stderr
    for form in ("core", "flask_ext"):
        assert f"== {form}: the server" in output
    assert output.count("canary errors: 0") == 2, output
    assert output.count("server log: 0 tracebacks") == 2, output
    assert "hostile attacks: 0" not in output
