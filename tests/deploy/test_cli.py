"""``python -m geventsio module:app``: serving, patching, TLS, helpful errors."""

from __future__ import annotations

import shutil
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from gevent import subprocess

from tests.deploy.processes import PYTHON, ROOT, Processes, Server
from tests.support import HttpClient
from tests.support.node import run_node

SCENARIO = "../deploy/js/scenario.mjs"
APP = "tests.deploy.sio_app:app"


def http_get(server: Server, target: str) -> bytes:
    with HttpClient("127.0.0.1", server.port) as http:
        response = http.get(target)
    assert response.status == 200, response
    return response.body


def stop(server: Server) -> str:
    """SIGTERM; the server must exit 0 within 5 s. Returns its output."""
    server.process.signal(signal.SIGTERM)
    assert server.process.wait(timeout=5) == 0, server.process.output
    return server.process.output


@pytest.mark.e2e
def test_serves_socketio_on_every_transport_patched_before_the_import(
    processes: Processes,
) -> None:
    server = processes.cli(APP)

    result = run_node(SCENARIO, server.url, "polling", "websocket", "upgrade", timeout=30)

    assert result["ok"], result
    assert [r["final"] for r in result["results"]] == ["polling", "websocket", "websocket"]
    assert http_get(server, "/patched") == b"True"  # patched before the module's import
    output = stop(server)
    assert "shutting down" in output
    assert "WARNING" not in output
    assert "Traceback" not in output


def test_no_patch(processes: Processes) -> None:
    server = processes.cli(APP, "--no-patch")

    assert http_get(server, "/patched") == b"False"
    assert "WARNING" not in stop(server)


def test_no_patch_when_patching_is_expected_warns_once(processes: Processes) -> None:
    server = processes.cli(APP, "--no-patch", env={"GEVENTSIO_EXPECT_PATCHED": "1"})

    output = stop(server)
    assert output.count("WARNING") == 1, output
    assert "monkey-patching was expected but the standard library is not patched" in output


@pytest.fixture
def listening_port() -> Iterator[int]:
    """A port some other program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate and its key for localhost, made now with ``openssl``."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "geventsio", *args],
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        timeout=30,
    )


def assert_usage_error(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("python -m geventsio: error: "), lines[0]
    assert message in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_such_module:app", "cannot import 'no_such_module': no module named 'no_such_module'"),
        ("tests.deploy.no_such:app", "no module named 'tests.deploy.no_such'"),
        ("tests.deploy.sio_app:no_such_app", "module 'tests.deploy.sio_app' has no attribute"),
        ("tests.deploy.sio_app:PATCHED_AT_IMPORT", "is not a WSGI application"),
    ],
)
def test_an_app_that_does_not_exist(spec: str, message: str) -> None:
    assert_usage_error(run_cli(spec), message)


def test_a_port_in_use(listening_port: int) -> None:
    result = run_cli(APP, "--port", str(listening_port))
    assert_usage_error(
        result, f"cannot listen on 127.0.0.1:{listening_port}: Address already in use"
    )


def test_a_certificate_that_does_not_load(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello\n")
    assert_usage_error(run_cli(APP, "--certfile", str(not_pem)), "not a PEM certificate")
    assert_usage_error(run_cli(APP, "--certfile", str(cert)), "not a PEM certificate")
    assert_usage_error(
        run_cli(APP, "--certfile", str(tmp_path / "missing.pem")), "No such file or directory"
    )
    other_key = tmp_path / "other.pem"
    subprocess.run(
        [
            "openssl",
            "genpkey",
            "-algorithm",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-out",
            str(other_key),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    assert_usage_error(
        run_cli(APP, "--certfile", str(cert), "--keyfile", str(other_key)),
        "the private key does not match the certificate",
    )
    assert key.exists()


@pytest.mark.e2e
def test_tls(processes: Processes, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server = processes.cli(APP, "--certfile", str(cert), "--keyfile", str(key))

    assert server.url.startswith("https://")
    result = run_node(SCENARIO, server.url, "polling", "websocket", "upgrade", timeout=30)

    assert result["ok"], result
    assert [r["final"] for r in result["results"]] == ["polling", "websocket", "websocket"]
    stop(server)


@pytest.mark.e2e
def test_block_threshold_logs_the_blocking_handler_once(processes: Processes) -> None:
    server = processes.cli(APP, "--block-threshold", "0.1")
    client = f"""
        import {{ io }} from "socket.io-client";
        const socket = io("{server.url}", {{ transports: ["websocket"] }});
        await new Promise((resolve) => socket.once("connect", resolve));
        const slow = await socket.timeout(5000).emitWithAck("slow");
        const echo = await socket.timeout(5000).emitWithAck("echo", "after");
        socket.disconnect();
        console.log(JSON.stringify({{ slow, echo }}));
        process.exit(0);
    """

    assert run_node(client, timeout=30) == {"slow": "done", "echo": ["after"]}
    server.process.wait_for(r"WARNING geventsio\.serving\.monitor", timeout=5)
    output = stop(server)

    # One record for the handler (a loaded machine may add one for a pause of the process).
    assert output.count("in slow_handler") == 1, output
    record = output[
        output.rindex("WARNING geventsio.serving.monitor", 0, output.index("in slow_handler")) :
    ]
    assert "blocked the gevent event loop for 0.3" in record
    assert 'sio_app.py", line' in record
    assert "in slow_handler" in record
    assert "in slow\n" in record
