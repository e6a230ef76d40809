"""``python -m geventsio module:app``: run any WSGI application on geventsio's server.

The order matters and is the point of this command: gevent's monkey-patching first (unless
``--no-patch``; only the certificate is checked before), then logging, then the user's
module -- so that everything it imports cooperates -- then the patching check, the
listening socket, and serving until SIGINT/SIGTERM.
A mistake in the command line (a module or attribute that does not exist, a port in use,
a certificate that does not load) ends with exit status 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import re
import ssl
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from geventsio.serving import check_patching, make_server, run_server

PROG = "python -m geventsio"

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class UsageError(Exception):
    """A mistake in the command line, reported in one line with exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Serve a WSGI application (Socket.IO included) on gevent, with WebSocket "
        "support, monkey-patching and a clean shutdown on SIGINT/SIGTERM.",
    )
    parser.add_argument(
        "app", metavar="MODULE:APP", help="the WSGI application, e.g. myproject.web:app"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=port_number, default=5000, help="port (0: any free one)")
    parser.add_argument(
        "--patch",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="monkey-patch the standard library with gevent before importing MODULE",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error", "critical"],
        help="logging level of the root logger",
    )
    parser.add_argument("--access-log", action="store_true", help="log one line per request")
    parser.add_argument("--certfile", help="TLS certificate (PEM); serves HTTPS")
    parser.add_argument("--keyfile", help="TLS private key (PEM), if not in --certfile")
    parser.add_argument(
        "--block-threshold",
        type=positive_seconds,
        metavar="SECONDS",
        help="log every handler that holds the event loop longer than this (e.g. 0.1)",
    )
    return parser


def port_number(text: str) -> int:
    """A TCP port, 0 to 65535 (an argparse type)."""
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}")
    return int(text)


def positive_seconds(text: str) -> float:
    """A duration in seconds, greater than zero (an argparse type)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0: {text!r}")
    return value


def load_app(spec: str) -> Any:
    """Import ``module:attribute`` (the attribute defaults to ``app``).

    :raises UsageError: the module or the attribute does not exist, or is not callable.
    """
    module_name, _, attribute = spec.partition(":")
    attribute = attribute or "app"
    if not module_name:
        raise UsageError(f"expected MODULE:APP, got {spec!r}")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not (module_name + ".").startswith(exc.name + "."):
            raise  # the module exists; something it imports is missing: show the traceback
        raise UsageError(
            f"cannot import {module_name!r}: no module named {exc.name!r} "
            f"(run from the folder that contains it, or set PYTHONPATH)"
        ) from None
    app: Any = module
    for name in attribute.split("."):
        try:
            app = getattr(app, name)
        except AttributeError:
            raise UsageError(f"module {module_name!r} has no attribute {attribute!r}") from None
    if not callable(app):
        raise UsageError(f"{spec} is not a WSGI application (it is not callable)")
    return app


def check_certificate(certfile: str | None, keyfile: str | None) -> None:
    """Load the certificate once, to report a bad one in a sentence.

    :raises UsageError: it does not load.
    """
    if keyfile and not certfile:
        raise UsageError("--keyfile needs --certfile")
    if not certfile:
        return
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certfile, keyfile)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        key = f" with key {keyfile}" if keyfile else ""
        raise UsageError(
            f"cannot load the certificate {certfile}{key}: {_certificate_problem(exc)}"
        ) from None


def _certificate_problem(exc: Exception) -> str:
    if isinstance(exc, ssl.SSLError):
        if exc.reason == "KEY_VALUES_MISMATCH":
            return "the private key does not match the certificate"
        if "PEM lib" in str(exc):
            return "not a PEM certificate with its private key (--keyfile for a separate key)"
        return re.sub(r" \(_ssl\.c:\d+\)", "", str(exc.strerror or exc))
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line (``argv`` defaults to ``sys.argv[1:]``)."""
    args = build_parser().parse_args(argv)
    preloaded = frozenset(sys.modules)
    try:
        check_certificate(args.certfile, args.keyfile)
        if args.patch:
            from gevent import monkey

            monkey.patch_all()
        logging.basicConfig(level=args.log_level.upper(), format=LOG_FORMAT)
        app = load_app(args.app)
        check_patching(True if args.patch else None, ignore=preloaded.__contains__)
        server = listen(app, args)
    except UsageError as exc:
        fail(str(exc))
    run_server(server, app, block_threshold=args.block_threshold)


def listen(app: Any, args: argparse.Namespace) -> Any:
    """The server for ``app``, bound to its address (not started yet).

    :raises UsageError: the address cannot be bound.
    """
    try:
        return make_server(
            app,
            args.host,
            args.port,
            certfile=args.certfile,
            keyfile=args.keyfile,
            log_requests=args.access_log,
        )
    except OSError as exc:
        if exc.errno is not None and exc.errno > 0:
            reason = os.strerror(exc.errno)
        else:  # getaddrinfo's errors; gevent appends the address to their text
            reason = re.sub(r": \(.*\)$", "", exc.strerror or str(exc))
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {reason}") from None


def fail(message: str) -> NoReturn:
    """Print ``PROG: error: message`` on stderr and exit with status 2."""
    print(f"{PROG}: error: {message}", file=sys.stderr)
    sys.exit(2)
