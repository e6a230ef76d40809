"""The same geventsio application on each serving path, measured in one run.

    .venv/bin/python bench/serving_paths.py                 # ~4 min: 5 paths x 4 scenarios
    .venv/bin/python bench/serving_paths.py --repeat 3      # best of 3, interleaved
    .venv/bin/python bench/serving_paths.py --smoke         # ~1 min: does every path answer?

Paths: geventsio's runner, ``gunicorn -k gevent``, ``gunicorn -k
geventsio.serving.gunicorn.GeventWorker``, gevent-websocket's gunicorn worker, and pywsgi
with gevent-websocket's ``WebSocketHandler`` (``-w 1`` everywhere). Scenarios, sizes and
the load generator are bench/run.py's (echo, 1 KiB binary echo, long-polling echo, idle
memory); the server process measured (CPU, RSS) is the one serving: gunicorn's worker,
not its arbiter, pinned to core 0, the generator to core 1. Each figure is printed with
its ratio to the runner *in the same run*, the only comparison a busy machine allows.
Runs with the interpreter that runs it (gunicorn and gevent-websocket installed: the
project's .venv).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # bench/run.py: scenarios, load generator, pinning

SERVERS = run.BENCH / "servers"
GUNICORN_WORKERS = {
    "gunicorn -k gevent": "gevent",
    "gunicorn -k geventsio GeventWorker": "geventsio.serving.gunicorn.GeventWorker",
    "gunicorn -k gevent-websocket worker": "geventwebsocket.gunicorn.workers.GeventWebSocketWorker",
}
PATHS = ["runner", *GUNICORN_WORKERS, "pywsgi + gevent-websocket handler"]
SCENARIOS = ["echo", "binary", "polling", "idle"]


@dataclass
class PathServer:
    """A server on one path: ``pid`` is the process that serves (gunicorn's worker)."""

    process: subprocess.Popen[str]
    port: int
    pid: int

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start(path: str) -> PathServer:
    python = sys.executable
    if path in GUNICORN_WORKERS:
        # --worker-connections: under -k gevent each WebSocket keeps its request (and a
        # slot of the worker's pool, 1,000 by default) for its whole life.
        gunicorn = [python, "-m", "gunicorn", "-k", GUNICORN_WORKERS[path], "-w", "1"]
        gunicorn += ["--worker-connections", "10000"]
        argv = [*gunicorn, "-b", "127.0.0.1:0", "--no-control-socket", "paths_app:app"]
    elif path == "runner":
        argv = [python, "geventsio_server.py", "--port", "0"]
    else:
        argv = [python, "pywsgi_gws_server.py", "--port", "0"]
    process = subprocess.Popen(
        argv,
        cwd=str(SERVERS),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=run.pinned(run.SERVER_CORE),
    )
    assert process.stdout is not None
    port = pid = None
    deadline = time.monotonic() + 30
    while (port is None or pid is None) and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        if line.startswith("PORT "):  # the runner, pywsgi: this process serves
            port, pid = int(line.split()[1]), process.pid
        elif found := re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", line):
            port = int(found[1])
        elif found := re.search(r"Booting worker with pid: (\d+)", line):
            pid = int(found[1])
    if port is None or pid is None:
        process.kill()
        raise RuntimeError(f"{path}: did not start")
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(pid, {run.SERVER_CORE})
    # gunicorn's output is no longer read: let it go nowhere rather than fill the pipe.
    subprocess.Popen(["cat"], stdin=process.stdout, stdout=subprocess.DEVNULL)
    return PathServer(process, port, pid)


def measure(bench: run.Bench, path: str, scenario: run.Scenario, smoke: bool) -> dict[str, Any]:
    server = start(path)
    try:
        return bench.loadgen(scenario.name, server, scenario.smoke if smoke else scenario.full)  # type: ignore[arg-type]
    finally:
        server.stop()


def figure(result: dict[str, Any], base: dict[str, Any], scenario: run.Scenario) -> str:
    rate, base_rate = result.get("rate"), base.get("rate")
    if not isinstance(rate, (int, float)) or "error" in result:
        return "ERROR"
    text = run.fmt_rate(result, scenario.unit)
    if result.get("p50_ms") is not None and scenario.latency:
        text += f" (p50 {result['p50_ms']:.1f} ms)"
    if isinstance(base_rate, (int, float)) and base_rate > 0:
        text += f" **{rate / base_rate:.2f}x**"
    cost, base_cost = result.get("server_us_per_op"), base.get("server_us_per_op")
    if isinstance(cost, (int, float)) and isinstance(base_cost, (int, float)) and base_cost:
        text += f", {cost:.0f} µs/op **{cost / base_cost:.2f}x**"
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per figure (best kept)")
    parser.add_argument("--smoke", action="store_true", help="small sizes, 1 s runs")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    args = parser.parse_args(argv)
    scenarios = [s for s in run.SCENARIOS if s.name in args.scenarios.split(",")]
    timing = run.SMOKE_TIMING if args.smoke else run.FULL_TIMING
    bench = run.Bench(Path(sys.executable), run.ensure_node(), timing, None, None)
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for _ in range(args.repeat):
        for scenario in scenarios:
            for path in PATHS:  # interleaved: a busy spell hurts every path alike
                run.log(f"{scenario.name} on {path}")
                results.setdefault((scenario.name, path), []).append(
                    measure(bench, path, scenario, args.smoke)
                )
    load = run.machine_busy_cores()
    header = ["path", *(s.describe(args.smoke) + f", {s.unit}" for s in scenarios)]
    rows = [header]
    for path in PATHS:
        row = [path]
        for scenario in scenarios:
            best = run.best_run(scenario, results[(scenario.name, path)])
            base = run.best_run(scenario, results[(scenario.name, "runner")])
            row.append(figure(best, base, scenario))
        rows.append(row)
    print(run.markdown_table(rows))
    print(
        f"\nratios to the runner, same run; best of {args.repeat}; other load at the end: "
        f"{load:.2f} cores"
    )
    errors = [r.get("error") for runs in results.values() for r in runs if "error" in r]
    for error in errors:
        print("error:", error, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
