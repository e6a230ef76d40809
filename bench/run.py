#!/usr/bin/env python3
"""geventsio's benchmark suite: geventsio against the Node.js reference (socket.io 4.8)
and python-socketio on gevent, in one run, and the cost of the Flask extension
(flask_ext) over the geventsio core.

    python bench/run.py                       # every scenario, all four servers (~15 minutes)
    python bench/run.py --smoke --only geventsio,flask_ext   # ~25 s: every scenario has figures?
    python bench/run.py --only geventsio,flask_ext --scenarios echo   # flask_ext's overhead
    python bench/run.py --scenarios echo,binary --profile /tmp/prof   # py-spy the server

Each scenario starts the server under test as a process of its own (pinned to core 0)
and drives it with a Node.js load generator (``bench/js/loadgen.mjs``, pinned to core
1) that speaks raw Engine.IO/Socket.IO frames. The generator reports its own CPU use,
the server's, and the rest of the machine's, so a saturated generator or a noisy machine
is visible next to the figures. Results go to stdout as a table and to a JSON file.

The script needs only the standard library. The servers run in ``bench/.venv`` (created
on first use: python-socketio, gevent, gevent-websocket at the versions pinned in
``bench/requirements.txt``, and geventsio from this repository, editable, with Flask); when
python-socketio is not measured (``--only geventsio,flask_ext``) the current interpreter is
used instead when it can import geventsio (and Flask, for flask_ext).
``bench/js/node_modules`` (the load generator's packages and ``socket.io`` for the Node
reference, ``servers/node_server.js``) is installed with ``npm ci`` on first use.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV = BENCH / ".venv"
JS = BENCH / "js"
RESULTS = BENCH / "results"

SERVER_CORE = 0
GENERATOR_CORE = 1


@dataclass(frozen=True)
class Implementation:
    """A server under test."""

    name: str
    script: Path
    #: A directory holding a ``geventsio`` package to run instead of the installed one
    #: (``--variant``: measure a patched copy of the core against the original).
    pythonpath: str | None = None
    #: The implementation this one is a layer over: its overhead against that one is
    #: reported (throughput loss, server CPU per operation), rather than a ratio to
    #: python-socketio.
    layer_over: str | None = None
    #: The largest overhead over ``layer_over`` allowed (default :data:`OVERHEAD_TARGET`).
    overhead_target: float | None = None
    #: What runs ``script``: ``"python"`` (the servers' interpreter) or ``"node"``.
    runtime: str = "python"


GEVENTSIO = Implementation("geventsio", BENCH / "servers" / "geventsio_server.py")
FLASK_EXT = Implementation(
    "flask_ext", BENCH / "servers" / "flask_ext_server.py", layer_over=GEVENTSIO.name
)
PYSOCKETIO = Implementation("python-socketio", BENCH / "servers" / "pysocketio_server.py")
#: Issue 20: the Node.js reference, socket.io 4.8 from npm with its default options.
NODE = Implementation("node", BENCH / "servers" / "node_server.js", runtime="node")
#: Issue 17: the geventsio server with its Prometheus metrics on costs at most 3 %.
METRICS = Implementation(
    "metrics",
    BENCH / "servers" / "geventsio_metrics_server.py",
    layer_over=GEVENTSIO.name,
    overhead_target=0.03,
)
IMPLEMENTATIONS = {impl.name: impl for impl in (GEVENTSIO, METRICS, FLASK_EXT, NODE, PYSOCKETIO)}
#: What runs when --only is not given (the metrics server only when asked for).
DEFAULT_IMPLEMENTATIONS = (GEVENTSIO, FLASK_EXT, NODE, PYSOCKETIO)
BASELINE = PYSOCKETIO.name
#: Issue 20: every figure is also given as a ratio to the Node.js reference.
REFERENCE = NODE.name

#: Issue 20 (15 % in issue 7): through flask_ext, at most 10 % of the core's throughput
#: is lost (idle: at most 10 % more memory), nor server CPU per operation added.
OVERHEAD_TARGET = 0.10


@dataclass(frozen=True)
class Scenario:
    """One measurement: a load generator scenario with its sizes, or an external module.

    :param target: geventsio's ratio to python-socketio asked for.
    :param node_floor: geventsio's ratio to the Node.js reference asked for (issue 20).
    :param lower_is_better: the ratio targets are ceilings (memory), not floors.
    :param external: a module of bench/ that runs the scenario itself (see README.md).
    """

    name: str
    title: str
    unit: str
    target: float
    full: dict[str, Any] = field(default_factory=dict)
    smoke: dict[str, Any] = field(default_factory=dict)
    lower_is_better: bool = False
    latency: bool = False
    external: str | None = None
    node_floor: float = 0.0

    def describe(self, smoke: bool) -> str:
        """The title, with this mode's sizes filled in."""
        sizes = self.smoke if smoke else self.full
        return self.title.format(clients=f"{sizes.get('clients', 0):,}")


SCENARIOS = [
    Scenario(
        "echo",
        "echo + ack, {clients} WS clients, 100 B JSON",
        "acks/s",
        4.0,
        {"clients": 50},
        {"clients": 10},
        latency=True,
        node_floor=1.0,
    ),
    Scenario(
        "binary",
        "echo + ack, {clients} WS clients, 1 KiB binary",
        "acks/s",
        8.0,
        {"clients": 50},
        {"clients": 10},
        latency=True,
        node_floor=1.0,
    ),
    Scenario(
        "broadcast",
        "broadcast to a room of {clients} WS clients",
        "deliveries/s",
        2.0,
        {"clients": 1000},
        {"clients": 50},
        node_floor=1.2,
    ),
    Scenario(
        "connect",
        "connects, WebSocket-only, {clients} at a time",
        "connects/s",
        1.5,
        {"clients": 20},
        {"clients": 5},
        latency=True,
        node_floor=1.2,
    ),
    Scenario(
        "idle",
        "idle memory, {clients} WS connections",
        "KiB/conn",
        0.35,
        {"clients": 5000, "settle": 3},
        {"clients": 100, "settle": 0.5},
        lower_is_better=True,
        node_floor=0.9,
    ),
    Scenario(
        "polling",
        "long-polling echo + ack, {clients} clients",
        "acks/s",
        8.0,
        {"clients": 20},
        {"clients": 5},
        latency=True,
        node_floor=0.9,
    ),
    # Added by a colleague: two geventsio nodes sharing rooms through Redis.
    Scenario(
        "redis_broadcast",
        "broadcast through Redis, two nodes",
        "deliveries/s",
        0.0,
        external="redis_broadcast",
    ),
]

FULL_TIMING = {"warmup": 1.0, "duration": 4.0}
FULL_REPEAT = 5
SMOKE_TIMING = {"warmup": 0.3, "duration": 1.0}


# -- environment -------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def venv_python() -> Path:
    return VENV / "bin" / "python"


#: geventsio's extras in bench/.venv: Redis for bench/redis_broadcast.py, Flask for flask_ext.
GEVENTSIO_EXTRAS = "redis,flask"


def ensure_venv() -> Path:
    """Create or update bench/.venv when bench/requirements.txt (or the extras) changed."""
    requirements = BENCH / "requirements.txt"
    stamp = VENV / ".bench-requirements"
    digest = hashlib.sha256(requirements.read_bytes() + GEVENTSIO_EXTRAS.encode()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest and venv_python().exists():
        return venv_python()
    log(f"installing the benchmark environment in {VENV} (once)")
    if not venv_python().exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [str(venv_python()), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(requirements), "-e", f"{ROOT}[{GEVENTSIO_EXTRAS}]"], check=True)
    stamp.write_text(digest)
    return venv_python()


def ensure_pyspy(python: Path) -> Path:
    pyspy = python.parent / "py-spy"
    if not pyspy.exists():
        log("installing py-spy into the benchmark environment")
        subprocess.run([str(python), "-m", "pip", "install", "-q", "py-spy==0.4.3"], check=True)
    return pyspy


def can_import_geventsio(python: str, flask: bool = False) -> bool:
    modules = "geventsio, gevent" + (", flask, flask_ext" if flask else "")
    probe = subprocess.run([python, "-c", f"import {modules}"], capture_output=True)
    return probe.returncode == 0


def choose_python(args: argparse.Namespace, implementations: list[Implementation]) -> Path:
    if args.python:
        return Path(args.python)
    if PYSOCKETIO not in implementations and can_import_geventsio(
        sys.executable, flask=FLASK_EXT in implementations
    ):
        return Path(sys.executable)
    return ensure_venv()


def ensure_node() -> str:
    node = shutil.which("node")
    if node is None:
        raise SystemExit("bench: Node.js (20+) is needed for the load generator")
    installed = JS / "node_modules" / ".package-lock.json"
    if (
        not installed.exists()
        or (JS / "package-lock.json").stat().st_mtime > installed.stat().st_mtime
        or not all((JS / "node_modules" / name).is_dir() for name in ("ws", "socket.io"))
    ):
        log("installing the load generator and the Node reference (npm ci in bench/js)")
        npm = shutil.which("npm") or "npm"
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=JS, check=True
        )
    return node


def machine_busy_cores(interval: float = 0.5) -> float:
    """How many cores the machine kept busy over ``interval`` seconds (from /proc/stat)."""

    def busy_and_total() -> tuple[int, int]:
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        idle = ticks[3] + ticks[4]
        return sum(ticks) - idle, sum(ticks)

    try:
        busy0, total0 = busy_and_total()
        time.sleep(interval)
        busy1, total1 = busy_and_total()
    except (OSError, ValueError):
        return 0.0
    cores = os.cpu_count() or 1
    return cores * (busy1 - busy0) / max(1, total1 - total0)


def wait_for_quiet(limit: float, threshold: float = 0.15) -> float:
    """Wait up to ``limit`` seconds for the machine to be idle; the load last seen."""
    deadline = time.monotonic() + limit
    load = machine_busy_cores()
    while load > threshold and time.monotonic() < deadline:
        load = machine_busy_cores(1.0)
    if load > threshold:
        log(f"the machine is busy ({load:.2f} cores used by others): figures will be noisy")
    return load


def pinned(core: int) -> Callable[[], None]:
    """A preexec function: run on one core, with the open-files limit raised."""

    def setup() -> None:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        if (
            hasattr(os, "sched_setaffinity")
            and core in os.sched_getaffinity(0)
            and (len(os.sched_getaffinity(0)) > 1)
        ):
            os.sched_setaffinity(0, {core})

    return setup


def machine_info(node: str, python: Path) -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = subprocess.run(
        [str(python), "-c", VERSIONS_PROBE], capture_output=True, text=True
    ).stdout.strip()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": subprocess.run(
            [str(python), "-V"], capture_output=True, text=True
        ).stdout.strip(),
        "node": subprocess.run([node, "-v"], capture_output=True, text=True).stdout.strip(),
        "packages": json.loads(versions or "{}"),
        "pinning": f"server on core {SERVER_CORE}, load generator on core {GENERATOR_CORE}"
        if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1
        else "none (fewer than 2 cores)",
    }


VERSIONS_PROBE = """
import json
from importlib import metadata
names = ["geventsio", "gevent", "greenlet", "gevent-websocket", "orjson", "websockets",
         "flask", "werkzeug", "python-socketio", "python-engineio"]
found = {}
for name in names:
    try:
        found[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        pass
try:  # which build of geventsio the servers import (scripts/compile.sh builds it in place)
    import importlib.machinery
    import geventsio.engine.socket as probe
    compiled = isinstance(probe.__spec__.loader, importlib.machinery.ExtensionFileLoader)
    found["geventsio"] += " (compiled with mypyc)" if compiled else " (pure Python)"
except Exception:
    pass
print(json.dumps(found))
"""


# -- processes ---------------------------------------------------------------------------


@dataclass
class ServerProcess:
    """A running server under test."""

    implementation: Implementation
    process: subprocess.Popen[str]
    port: int

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Bench:
    """What a scenario needs: servers to start and a load generator to run.

    External scenario modules (``bench/redis_broadcast.py``) get this object.
    """

    def __init__(
        self,
        python: Path,
        node: str,
        timing: dict[str, float],
        profile_dir: Path | None,
        pyspy: Path | None,
    ) -> None:
        self.python = python
        self.node = node
        self.timing = timing
        self.profile_dir = profile_dir
        self.pyspy = pyspy
        self.clk_tck = os.sysconf("SC_CLK_TCK")

    @contextmanager
    def server(
        self,
        implementation: Implementation,
        *extra_args: str,
        env: dict[str, str] | None = None,
        core: int = SERVER_CORE,
    ) -> Iterator[ServerProcess]:
        """Start a server (``PORT <n>`` on its stdout says it is ready); stop it after."""
        environment = {**os.environ, **(env or {})}
        if implementation.pythonpath:
            environment["PYTHONPATH"] = implementation.pythonpath
        runtime = self.node if implementation.runtime == "node" else str(self.python)
        process = subprocess.Popen(
            [runtime, str(implementation.script), "--port", "0", *extra_args],
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=pinned(core),
            cwd=str(BENCH),
            env=environment,
        )
        server = None
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            if not line.startswith("PORT "):
                raise RuntimeError(f"{implementation.name} server did not start: {line!r}")
            server = ServerProcess(implementation, process, int(line.split()[1]))
            yield server
        finally:
            if server is not None:
                server.stop()
            elif process.poll() is None:
                process.kill()
                process.wait()

    def loadgen(
        self,
        scenario: str,
        server: ServerProcess,
        options: dict[str, Any],
        core: int = GENERATOR_CORE,
    ) -> dict[str, Any]:
        """Run one load generator scenario against ``server``; its JSON result."""
        merged = {
            "port": server.port,
            "serverPid": server.pid,
            "clkTck": self.clk_tck,
            **self.timing,
            **options,
        }
        budget = merged["warmup"] + merged["duration"] + 60
        merged.setdefault("timeout", budget)
        process = subprocess.run(
            [self.node, str(JS / "loadgen.mjs"), scenario, json.dumps(merged)],
            capture_output=True,
            text=True,
            preexec_fn=pinned(core),
            cwd=str(JS),
            timeout=budget + 10,
        )
        result = last_json_line(process.stdout)
        if result is None:
            result = {
                "error": f"no result (exit {process.returncode}): {process.stderr.strip()[-2000:]}"
            }
        if not server.alive():
            result["error"] = f"the server died (exit {server.process.returncode})"
        return result

    @contextmanager
    def profiling(self, server: ServerProcess, label: str) -> Iterator[None]:
        """Sample the server with py-spy while the block runs, when --profile is given."""
        if (
            self.profile_dir is None
            or self.pyspy is None
            or server.implementation.runtime != "python"
        ):
            yield
            return
        self.profile_dir.mkdir(parents=True, exist_ok=True)
        output = self.profile_dir / f"{label}.txt"
        spy = subprocess.Popen(
            [
                str(self.pyspy),
                "record",
                "--pid",
                str(server.pid),
                "--format",
                "raw",
                "--rate",
                "250",
                "--nonblocking",
                "--output",
                str(output),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            yield
        finally:
            spy.send_signal(signal.SIGINT)
            try:
                spy.wait(20)
            except subprocess.TimeoutExpired:
                spy.kill()
            log(f"profile of {label}: {output}")


def last_json_line(text: str) -> dict[str, Any] | None:
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    return None


# -- scenarios ---------------------------------------------------------------------------


def run_scenario(
    bench: Bench, scenario: Scenario, implementation: Implementation, smoke: bool
) -> dict[str, Any]:
    if scenario.external is not None:
        return run_external(bench, scenario, implementation, smoke)
    options = scenario.smoke if smoke else scenario.full
    with bench.server(implementation) as server:
        label = f"{scenario.name}-{implementation.name}"
        with bench.profiling(server, label):
            return bench.loadgen(scenario.name, server, options)


def run_external(
    bench: Bench, scenario: Scenario, implementation: Implementation, smoke: bool
) -> dict[str, Any]:
    """An external scenario, ``bench/<name>.py``, measuring geventsio only.

    The script runs with the servers' interpreter (``--smoke`` in smoke mode; a
    ``--variant``'s copy of geventsio on its PYTHONPATH). Its result is its last JSON
    line on stdout (the keys of a load generator result, at least ``rate``), or else the
    first ``<n> deliveries/s`` figure it prints.
    """
    path = BENCH / f"{scenario.external}.py"
    if not path.exists():
        return {"skipped": f"bench/{path.name} is not there yet"}
    if not implementation.name.startswith(GEVENTSIO.name):
        return {"skipped": "geventsio only"}
    environment = dict(os.environ)
    if implementation.pythonpath:
        environment["PYTHONPATH"] = implementation.pythonpath
    process = subprocess.run(
        [str(bench.python), str(path), *(["--smoke"] if smoke else [])],
        capture_output=True,
        text=True,
        cwd=str(BENCH),
        env=environment,
        timeout=600,
    )
    found = last_json_line(process.stdout)
    if found is None:
        figure = re.search(r"([\d,.]+) deliveries/s", process.stdout)
        found = {"rate": float(figure[1].replace(",", ""))} if figure else {}
    found["output"] = process.stdout.strip().splitlines()
    if process.returncode != 0 or "rate" not in found:
        found["error"] = (
            f"bench/{path.name} exited {process.returncode}: "
            f"{(process.stderr or process.stdout).strip()[-1000:]}"
        )
    return found


def best_run(scenario: Scenario, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The best of the runs (highest rate; lowest for memory): on a machine shared with
    other work, interference only ever makes a figure worse."""
    good = [r for r in runs if isinstance(r.get("rate"), (int, float)) and "error" not in r]
    if not good:
        return runs[-1] if runs else {"error": "not run"}
    pick = min if scenario.lower_is_better else max
    best = dict(pick(good, key=lambda r: r["rate"]))
    best["runs"] = len(runs)
    if scenario.name != "idle":
        costs = [
            r["server_cpu"] / r["rate"] * 1e6
            for r in good
            if isinstance(r.get("server_cpu"), (int, float)) and r["rate"] > 0
        ]
        if costs:  # the least disturbed run's server CPU per operation
            best["server_us_per_op"] = min(costs)
    return best


def ratio(
    scenario: Scenario,
    results: dict[str, dict[str, Any]],
    name: str = GEVENTSIO.name,
    against: str = BASELINE,
) -> float | None:
    """``name``'s figure over ``against``'s (python-socketio, or the Node reference)."""
    ours = results.get(name, {}).get("rate")
    theirs = results.get(against, {}).get("rate")
    if "error" in results.get(name, {}) or "error" in results.get(against, {}):
        return None
    if not isinstance(ours, (int, float)) or not isinstance(theirs, (int, float)) or not theirs:
        return None
    return float(ours) / float(theirs)


def meets(scenario: Scenario, value: float | None, target: float | None = None) -> bool | None:
    """Whether a ratio reaches ``target`` (default: the scenario's, to python-socketio)."""
    target = scenario.target if target is None else target
    if value is None or not target:
        return None
    return value <= target if scenario.lower_is_better else value >= target


def ratio_pairs(names: list[str]) -> list[tuple[str, str]]:
    """Every (server, reference) pair reported: each server against the Node reference,
    then each against python-socketio, for the references that ran."""
    return [(n, ref) for ref in (REFERENCE, BASELINE) if ref in names for n in names if n != ref]


def ratio_target(scenario: Scenario, name: str, against: str) -> float | None:
    """The floor (ceiling for memory) a ratio is held to: geventsio's (and its
    variants') to Node and to python-socketio; none for the others."""
    if not name.startswith(GEVENTSIO.name):
        return None
    return scenario.node_floor if against == REFERENCE else scenario.target


def overhead(
    scenario: Scenario, results: dict[str, dict[str, Any]], layer: Implementation
) -> dict[str, Any] | None:
    """What ``layer`` (flask_ext) costs over the implementation it is a layer over, in
    one run: ``rate``, the share of throughput lost (for memory: the share added), and
    ``server_us_per_op``, the share of server CPU per operation added (each run's least
    disturbed figure, "srv µs/op min"). Both must stay within :data:`OVERHEAD_TARGET`.
    """
    if layer.layer_over is None:
        return None
    base, ours = results.get(layer.layer_over, {}), results.get(layer.name, {})
    base_rate, our_rate = base.get("rate"), ours.get("rate")
    if not isinstance(base_rate, (int, float)) or not isinstance(our_rate, (int, float)):
        return None
    if base_rate <= 0 or "error" in base or "error" in ours:
        return None
    # Throughput lost; for memory (lower is better), memory added.
    rate_cost = our_rate / base_rate - 1 if scenario.lower_is_better else 1 - our_rate / base_rate
    base_cpu, our_cpu = base.get("server_us_per_op"), ours.get("server_us_per_op")
    cpu_cost = None
    if isinstance(base_cpu, (int, float)) and isinstance(our_cpu, (int, float)) and base_cpu > 0:
        cpu_cost = our_cpu / base_cpu - 1
    worst = max(cost for cost in (rate_cost, cpu_cost) if cost is not None)
    target = layer.overhead_target if layer.overhead_target is not None else OVERHEAD_TARGET
    return {
        "over": layer.layer_over,
        "rate": rate_cost,
        "server_us_per_op": cpu_cost,
        "target": target,
        "meets": worst <= target,
    }


# -- output ------------------------------------------------------------------------------


def fmt_rate(result: dict[str, Any] | None, unit: str) -> str:
    if not result:
        return "-"
    if "skipped" in result:
        return "skipped"
    if "error" in result:
        return "ERROR"
    rate = result.get("rate")
    if not isinstance(rate, (int, float)):
        return "-"
    return f"{rate:,.1f}" if unit == "KiB/conn" else f"{rate:,.0f}"


def fmt_latency(result: dict[str, Any] | None) -> str:
    if not result or result.get("p50_ms") is None:
        return ""
    return f"{result['p50_ms']:.2f}/{result['p99_ms']:.2f}"


def fmt_cpu(result: dict[str, Any] | None, key: str) -> str:
    if not result or not isinstance(result.get(key), (int, float)):
        return ""
    return f"{100 * result[key]:.0f}%"


def cpu_cost(result: dict[str, Any] | None, key: str) -> str:
    """A process's CPU per operation, in microseconds (``key``: generator_cpu or
    server_cpu): less sensitive to a busy machine than the rate."""
    if not result:
        return ""
    cpu, rate = result.get(key), result.get("rate")
    if not isinstance(cpu, (int, float)) or not isinstance(rate, (int, float)) or rate <= 0:
        return ""
    if result.get("connections"):  # idle: rate is KiB per connection, not per second
        return ""
    return f"{1e6 * cpu / rate:.0f}"


def server_cost(result: dict[str, Any] | None) -> str:
    if not result or not isinstance(result.get("server_us_per_op"), (int, float)):
        return ""
    return f"{result['server_us_per_op']:.0f}"


def render_table(report: dict[str, Any], implementations: list[Implementation]) -> str:
    names = [impl.name for impl in implementations]
    pairs = ratio_pairs(names)
    references = [ref for ref in (REFERENCE, BASELINE) if ref in names]
    header = ["scenario", "unit", *names]
    header += [f"{short(n)}/{short(ref)}" for n, ref in pairs]
    header += [f"target g/{short(ref)}" for ref in references]
    header += [f"p50/p99 ms {short(n)}" for n in names]
    header += [f"gen CPU {short(n)}" for n in names]
    header += [f"gen µs/op {short(n)}" for n in names]
    header += [f"srv CPU {short(n)}" for n in names]
    header += [f"srv µs/op min {short(n)}" for n in names]
    header += ["other CPU"]
    rows = [header]
    for entry in report["scenarios"]:
        scenario = next(s for s in SCENARIOS if s.name == entry["name"])
        results = entry["results"]
        row = [
            scenario.name,
            scenario.unit,
            *(fmt_rate(results.get(n), scenario.unit) for n in names),
        ]
        for name, against in pairs:
            value = ratio(scenario, results, name, against)
            target = ratio_target(scenario, name, against)
            mark = {True: " ok", False: " MISS", None: ""}[meets(scenario, value, target or 0)]
            row.append(f"{value:.2f}x{mark}" if value is not None else "-")
        sign = "<=" if scenario.lower_is_better else ">="
        for against in references:
            target = ratio_target(scenario, GEVENTSIO.name, against)
            row.append(f"{sign}{target:g}x" if target else "")
        row += [fmt_latency(results.get(n)) if scenario.latency else "" for n in names]
        row += [fmt_cpu(results.get(n), "generator_cpu") for n in names]
        row += [cpu_cost(results.get(n), "generator_cpu") for n in names]
        row += [fmt_cpu(results.get(n), "server_cpu") for n in names]
        row += [server_cost(results.get(n)) for n in names]
        others = [
            results[n]["other_cpu"]
            for n in names
            if isinstance(results.get(n, {}).get("other_cpu"), (int, float))
        ]
        row.append(f"{100 * max(others):.0f}%" if others else "")
        rows.append(row)
    return markdown_table(rows)


def markdown_table(rows: list[list[str]]) -> str:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        lines.append(
            "| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        )
        if index == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def render_overhead(report: dict[str, Any], implementations: list[Implementation]) -> str:
    """The overhead table: each layer (flask_ext) against the core, scenario by scenario;
    empty when no layer ran with its core."""
    names = {impl.name for impl in implementations}
    layers = [i for i in implementations if i.layer_over is not None and i.layer_over in names]
    rows = [
        [
            "scenario",
            "unit",
            "server",
            "over",
            "rate",
            "rate over",
            "throughput loss",
            "srv µs/op min",
            "srv µs/op min over",
            "srv µs/op increase",
            "target",
        ]
    ]
    for entry in report["scenarios"]:
        scenario = next(s for s in SCENARIOS if s.name == entry["name"])
        results = entry["results"]
        for layer in layers:
            found = entry.get("overhead", {}).get(layer.name)
            if found is None:
                continue
            assert layer.layer_over is not None
            mark = "met" if found["meets"] else "MISSED"
            rate_label = "{:+.1f}% memory" if scenario.lower_is_better else "{:.1f}%"
            cpu = found["server_us_per_op"]
            rows.append(
                [
                    scenario.name,
                    scenario.unit,
                    layer.name,
                    layer.layer_over,
                    fmt_rate(results.get(layer.name), scenario.unit),
                    fmt_rate(results.get(layer.layer_over), scenario.unit),
                    rate_label.format(100 * found["rate"]),
                    server_cost(results.get(layer.name)),
                    server_cost(results.get(layer.layer_over)),
                    f"{100 * cpu:.1f}%" if cpu is not None else "",
                    f"<={100 * found['target']:g}% {mark}",
                ]
            )
    return markdown_table(rows) if len(rows) > 1 else ""


def short(name: str) -> str:
    known = {
        "geventsio": "g",
        "metrics": "m",
        "flask_ext": "f",
        "node": "n",
        "python-socketio": "p",
    }
    return known.get(name, name.removeprefix("geventsio@"))


def describe_machine(machine: dict[str, Any]) -> str:
    packages = ", ".join(f"{k} {v}" for k, v in machine.get("packages", {}).items())
    return (
        f"{machine['cpu']}, {machine['cores']} cores, Linux {machine['kernel']}; "
        f"{machine['python']}, Node {machine['node']}; {machine['pinning']}\n{packages}"
    )


# -- main --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark geventsio against Node's socket.io and python-socketio, "
        "and flask_ext over it."
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="about a second per scenario with small sizes; only checks "
        "that every scenario produced numbers",
    )
    parser.add_argument(
        "--only",
        metavar="NAMES",
        help="comma-separated servers to measure (default: all): "
        + ", ".join(IMPLEMENTATIONS)
        + "; ratios need python-socketio, flask_ext's overhead needs geventsio",
    )
    parser.add_argument(
        "--scenarios",
        default="",
        help="comma-separated scenario names (default: all): "
        + ", ".join(s.name for s in SCENARIOS),
    )
    parser.add_argument("--warmup", type=float, help="seconds before measuring")
    parser.add_argument("--duration", type=float, help="seconds measured per run")
    parser.add_argument(
        "--repeat",
        type=int,
        help=f"runs per scenario and server, alternating servers; the best "
        f"is kept (default {FULL_REPEAT}; 1 in --smoke)",
    )
    parser.add_argument(
        "--json", type=Path, help="where to write the results (default: bench/results/)"
    )
    parser.add_argument("--python", help="the interpreter that runs the servers")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=None,
        metavar="S",
        help="before each measurement, wait up to S seconds for the rest "
        "of the machine to be idle (default 10; 0 in --smoke)",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="also run geventsio from DIR (a directory holding a patched "
        "copy of the geventsio package), reported as geventsio@NAME",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="sample each geventsio server with py-spy into DIR",
    )
    return parser.parse_args(argv)


def selected_implementations(spec: str | None) -> list[Implementation]:
    if not spec:
        return list(DEFAULT_IMPLEMENTATIONS)
    names = [name.strip() for name in spec.split(",") if name.strip()]
    unknown = [n for n in names if n not in IMPLEMENTATIONS]
    if unknown or not names:
        raise SystemExit(
            f"bench: unknown server(s) {', '.join(unknown) or spec!r}; "
            f"known: {', '.join(IMPLEMENTATIONS)}"
        )
    # In the suite's order, whatever the order given (the tables' columns follow it).
    return [impl for impl in IMPLEMENTATIONS.values() if impl.name in names]


def selected_scenarios(spec: str) -> list[Scenario]:
    if not spec:
        return SCENARIOS
    names = [name.strip() for name in spec.split(",") if name.strip()]
    known = {s.name: s for s in SCENARIOS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"bench: unknown scenario(s) {', '.join(unknown)}")
    return [known[n] for n in names]


def smoke_problems(report: dict[str, Any]) -> list[str]:
    problems = []
    for entry in report["scenarios"]:
        for name, result in entry["results"].items():
            if "skipped" in result:
                continue
            rate = result.get("rate")
            if "error" in result:
                problems.append(f"{entry['name']} / {name}: {result['error']}")
            elif (
                not isinstance(rate, (int, float))
                or not math.isfinite(rate)
                or (entry["name"] != "idle" and rate <= 0)
            ):
                problems.append(f"{entry['name']} / {name}: no figure ({rate!r})")
    return problems


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    implementations = selected_implementations(args.only)
    for spec in args.variant:
        name, _, directory = spec.partition("=")
        if not name or not (Path(directory) / "geventsio" / "__init__.py").exists():
            raise SystemExit(f"bench: --variant {spec!r}: expected NAME=DIR, DIR/geventsio/")
        variant = Implementation(
            f"geventsio@{name}", GEVENTSIO.script, str(Path(directory).resolve())
        )
        last = max(
            (i for i, impl in enumerate(implementations) if impl.name.startswith("geventsio")),
            default=-1,
        )
        implementations.insert(last + 1, variant)
    scenarios = selected_scenarios(args.scenarios)
    python = choose_python(args, implementations)
    node = ensure_node()
    timing = dict(SMOKE_TIMING if args.smoke else FULL_TIMING)
    if args.warmup is not None:
        timing["warmup"] = args.warmup
    if args.duration is not None:
        timing["duration"] = args.duration
    pyspy = ensure_pyspy(python) if args.profile else None
    bench = Bench(python, node, timing, args.profile, pyspy)
    quiet_wait = args.quiet_wait if args.quiet_wait is not None else (0 if args.smoke else 10)
    repeat = args.repeat or (1 if args.smoke else FULL_REPEAT)

    started = time.monotonic()
    report: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "mode": "smoke" if args.smoke else "full",
        "timing": timing,
        "machine": machine_info(node, python),
        "scenarios": [],
    }
    for scenario in scenarios:
        runs: dict[str, list[dict[str, Any]]] = {impl.name: [] for impl in implementations}
        rounds = 1 if scenario.external else repeat
        for round_number in range(rounds):
            for implementation in implementations:  # alternate: both see the same noise
                if quiet_wait and not scenario.external:
                    wait_for_quiet(quiet_wait)
                log(f"{scenario.name}: {implementation.name} ({round_number + 1}/{rounds})")
                try:
                    result = run_scenario(bench, scenario, implementation, args.smoke)
                except Exception as exc:  # one broken scenario must not hide the others
                    result = {"error": f"{type(exc).__name__}: {exc}"}
                if "error" in result:
                    log(f"  error: {result['error'][:500]}")
                runs[implementation.name].append(result)
        results = {name: best_run(scenario, found) for name, found in runs.items()}
        value = ratio(scenario, results)
        node_value = ratio(scenario, results, against=REFERENCE)
        names = [impl.name for impl in implementations]
        overheads = {
            impl.name: found
            for impl in implementations
            if (found := overhead(scenario, results, impl)) is not None
        }
        report["scenarios"].append(
            {
                "name": scenario.name,
                "title": scenario.describe(args.smoke),
                "unit": scenario.unit,
                "target": scenario.target or None,
                "lower_is_better": scenario.lower_is_better,
                "results": results,
                "ratio": value,
                "meets": meets(scenario, value),
                "node_floor": scenario.node_floor or None,
                "ratio_to_node": node_value,
                "meets_node_floor": meets(scenario, node_value, scenario.node_floor),
                "ratios": {
                    f"{n}/{ref}": ratio(scenario, results, n, ref) for n, ref in ratio_pairs(names)
                },
                "overhead": overheads,
                "runs": runs,
            }
        )
    report["elapsed_s"] = round(time.monotonic() - started, 1)

    table = render_table(report, implementations)
    print(describe_machine(report["machine"]))
    print(
        f"mode: {report['mode']}, warm-up {timing['warmup']:g} s, measured "
        f"{timing['duration']:g} s per run, best of {repeat} run(s) per scenario and server, "
        f"total {report['elapsed_s']} s"
    )
    print(table)
    for entry in report["scenarios"]:
        print(f"  {entry['name']}: {entry['title']}")
    overhead_table = render_overhead(report, implementations)
    if overhead_table:
        print(
            f"overhead over the core (target: at most {100 * OVERHEAD_TARGET:g}% throughput "
            "lost and server CPU per operation added):"
        )
        print(overhead_table)

    path = args.json
    if path is None:
        RESULTS.mkdir(exist_ok=True)
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = RESULTS / f"{report['mode']}-{stamp}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"results: {path}")

    problems = smoke_problems(report)
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
