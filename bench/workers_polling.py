"""Long-polling echo on ``gunicorn -k gevent -w 2`` against ``-w 1`` (geventsio.cluster).

Each round starts gunicorn with ``tests.deploy.sio_app:app`` on 127.0.0.1:3133, drives it
with ``bench/js/polling_echo.mjs`` (polling-only socket.io-clients, one echo with an
acknowledgement after another) and stops it; rounds of ``-w 1`` and ``-w 2`` alternate,
so both see the same noise. Under ``-w 2`` about half of every session's requests reach
the worker that does not own it and are forwarded.

    PYTHONPATH=. .venv/bin/python bench/workers_polling.py [--clients 20] [--seconds 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
PORT = 3133


def wait_listening(deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", PORT), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("gunicorn did not listen")


def one_round(workers: int, clients: int, seconds: float) -> float:
    argv = [GUNICORN, "-k", "gevent", "-w", str(workers), "--bind", f"127.0.0.1:{PORT}"]
    server = subprocess.Popen(
        [*argv, "--no-control-socket", "tests.deploy.sio_app:app"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(time.monotonic() + 20)
        time.sleep(1.0 * workers)  # every worker booted (bench only: no test waits so)
        out = subprocess.run(
            [
                "node",
                str(ROOT / "bench/js/polling_echo.mjs"),
                f"http://127.0.0.1:{PORT}",
                str(clients),
                str(seconds),
            ],
            cwd=ROOT / "tests/js",
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        ).stdout
        result = json.loads(out.strip().splitlines()[-1])
        return float(result["acks"]) / float(result["seconds"])
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rates: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(args.rounds):
        for workers in (1, 2):
            rates[workers].append(one_round(workers, args.clients, args.seconds))
            print(f"-w {workers}: {rates[workers][-1]:8.0f} echoes/s", flush=True)
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    print(f"median -w 1: {one:.0f} echoes/s; -w 2: {two:.0f} echoes/s ({two / one:.2f}x)")


if __name__ == "__main__":
    main()
