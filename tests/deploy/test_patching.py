"""The monkey-patching check, in fresh interpreters: one warning when patching is missing
or came too late, none when it came first."""

from __future__ import annotations

from pathlib import Path

import pytest
from gevent import subprocess

from tests.deploy.processes import PYTHON, ROOT, Processes

# The script under test, after its prelude: serve() on a free port, stopped by SIGTERM.
SERVE = """
import logging, os, signal
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
import gevent
import geventsio
gevent.spawn_later(0.3, os.kill, os.getpid(), signal.SIGTERM)
geventsio.serve(geventsio.WSGIApp(geventsio.Server()), "127.0.0.1", 0{arguments})
print("served")
"""

PATCH = "from gevent import monkey\nmonkey.patch_all()\n"


def run_script(tmp_path: Path, prelude: str, arguments: str = "", **env: str) -> list[str]:
    """Run prelude + SERVE; return its WARNING lines (asserting it served and stopped)."""
    script = tmp_path / "script.py"
    script.write_text(prelude + SERVE.format(arguments=arguments))
    result = subprocess.run(
        [PYTHON, "-W", "ignore::Warning", str(script)],
        cwd=str(ROOT),
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "served" in result.stdout, output
    assert "Traceback" not in output
    return [line for line in output.splitlines() if line.startswith("WARNING")]


def test_ssl_imported_before_patching(tmp_path: Path) -> None:
    warnings = run_script(tmp_path, "import ssl\n" + PATCH)

    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("WARNING geventsio.serving.patching: gevent monkey-patching")
    assert "came too late" in warnings[0]
    assert "ssl: socket (socket.socket)" in warnings[0]


def test_a_library_imported_before_patching(tmp_path: Path) -> None:
    warnings = run_script(tmp_path, "import flask\n" + PATCH)

    assert len(warnings) == 1, warnings
    assert "click.globals: local (threading.local)" in warnings[0]


@pytest.mark.parametrize(
    "prelude",
    [PATCH, PATCH + "import ssl, threading, flask\n"],
    ids=["patched-first", "patched-then-imports"],
)
def test_patched_first(tmp_path: Path, prelude: str) -> None:
    assert run_script(tmp_path, prelude) == []


def test_unpatched_is_fine_unless_patching_is_expected(tmp_path: Path) -> None:
    assert run_script(tmp_path, "") == []


@pytest.mark.parametrize(
    ("arguments", "env"),
    [(", expect_patched=True", {}), ("", {"GEVENTSIO_EXPECT_PATCHED": "1"})],
    ids=["argument", "environment"],
)
def test_unpatched_when_patching_is_expected(
    tmp_path: Path, arguments: str, env: dict[str, str]
) -> None:
    warnings = run_script(tmp_path, "", arguments, **env)

    assert len(warnings) == 1, warnings
    assert "monkey-patching was expected but the standard library is not patched" in warnings[0]


def test_gunicorn_preload_imports_the_app_before_the_worker_patches(
    processes: Processes,
) -> None:
    server = processes.gunicorn(
        "--preload",
        "-k",
        "geventsio.serving.gunicorn.GeventWorker",
        app="tests.deploy.sio_app:flask_app",
    )

    line = server.process.wait_for(r"monkey-patching came too late.*", timeout=10).group(0)
    assert "click.globals: local (threading.local)" in line
    assert "ssl:" not in line  # imported by gunicorn itself: not the user's to fix
    assert server.process.count("monkey-patching") == 1
