"""Cross-origin policy: which Origins may talk to the server, and the headers that say so."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from geventsio.options import OriginPolicy


def request_origin(environ: Mapping[str, Any]) -> str | None:
    """The request's ``Origin`` header, if any."""
    origin = environ.get("HTTP_ORIGIN")
    return str(origin) if origin else None


def _same_origin(origin: str, environ: Mapping[str, Any]) -> bool:
    host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
    forwarded_proto = environ.get("HTTP_X_FORWARDED_PROTO")
    scheme = forwarded_proto or environ.get("wsgi.url_scheme", "http")
    if origin == f"{scheme}://{host}":
        return True
    # A proxy may terminate TLS: accept the other scheme for the same host.
    other = "https" if scheme == "http" else "http"
    return origin == f"{other}://{host}" and forwarded_proto is None


def origin_allowed(policy: OriginPolicy, environ: Mapping[str, Any]) -> bool:
    """Whether the request's Origin passes the policy (requests without one always do)."""
    origin = request_origin(environ)
    if origin is None:
        return True
    if policy is None:
        return _same_origin(origin, environ)
    if isinstance(policy, str):
        return policy == "*" or policy == origin
    if callable(policy):
        return bool(policy(origin))
    return origin in policy


def cors_headers(
    policy: OriginPolicy, credentials: bool, environ: Mapping[str, Any]
) -> list[tuple[str, str]]:
    """Headers that let an allowed cross-origin caller read the response."""
    origin = request_origin(environ)
    if origin is None:
        return []
    headers = [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
    if credentials:
        headers.append(("Access-Control-Allow-Credentials", "true"))
    if environ.get("REQUEST_METHOD") == "OPTIONS":
        headers.append(("Access-Control-Allow-Methods", "OPTIONS, GET, POST"))
        requested = environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS")
        if requested:
            headers.append(("Access-Control-Allow-Headers", str(requested)))
    return headers
