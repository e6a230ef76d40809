"""Static files from a mapping of URL prefixes to files and folders.

For an application that has no other web server: ``{"/": "index.html", "/static":
"public/"}`` answers ``GET /`` with ``index.html`` and ``GET /static/app.js`` with
``public/app.js``. A file entry matches its URL exactly; a folder entry matches every path
under its prefix. Only GET and HEAD are answered; other methods, and paths with no file,
fall through to the wrapped application.

Safety: the URL path is split into segments and only plain names are accepted (no ``..``,
``.``, backslash or NUL; ``%2e%2e`` arrives decoded by the server, so it is the same
``..``); the file's resolved path (symlinks followed) must still be inside the folder's
resolved path. A request that breaks either rule gets 404, and never reaches the wrapped
application.
"""

from __future__ import annotations

import email.utils
import mimetypes
import os
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

StartResponse = Callable[..., Any]
StaticFilesMapping = Mapping[str, str | os.PathLike[str]]

#: Bytes read and sent at a time.
CHUNK_SIZE = 64 * 1024

_TEXT_TYPES = ("application/javascript", "application/json", "image/svg+xml")


class _Refused(Exception):
    """The path tries to leave its folder."""


@dataclass(frozen=True)
class _Entry:
    prefix: str
    target: Path
    is_dir: bool


def _normalise_prefix(prefix: str) -> str:
    if not prefix.startswith("/"):
        raise ValueError(f"static URL prefixes start with '/': {prefix!r}")
    return prefix.rstrip("/") or "/"


def content_type(path: Path) -> str:
    """The Content-Type for a file name (UTF-8 for text)."""
    guessed, _ = mimetypes.guess_type(path.name)
    guessed = guessed or "application/octet-stream"
    if guessed.startswith("text/") or guessed in _TEXT_TYPES:
        return f"{guessed}; charset=utf-8"
    return guessed


class StaticFiles:
    """Answer GET and HEAD for the files of a mapping; None for every other request.

    :param mapping: URL prefix -> a file (served at exactly that URL) or a folder (its
        files served under the prefix). Relative paths are taken from the current folder
        when the mapping is made.
    :raises ValueError: a prefix does not start with ``/``.
    """

    def __init__(self, mapping: StaticFilesMapping) -> None:
        entries = []
        for prefix, target in mapping.items():
            path = Path(target).resolve()
            entries.append(_Entry(_normalise_prefix(prefix), path, path.is_dir()))
        # Longest prefix first, so that "/static" wins over "/".
        self.entries = sorted(entries, key=lambda e: len(e.prefix), reverse=True)

    def __call__(
        self, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes] | None:
        """The response for a static file, or None when the request is not for one."""
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            return None
        try:
            path = self.find(str(environ.get("PATH_INFO", "") or "/"))
        except _Refused:
            return _not_found(start_response)
        if path is None:
            return None
        try:
            file = path.open("rb")
            info = os.fstat(file.fileno())
        except OSError:
            return None
        if not stat.S_ISREG(info.st_mode):
            file.close()
            return None
        return _respond(environ, start_response, path, file, info)

    def find(self, url_path: str) -> Path | None:
        """The file that a URL path names, if a mapping entry covers it and it exists.

        :raises _Refused: the path tries to leave its folder.
        """
        for entry in self.entries:
            if not entry.is_dir:
                if url_path == entry.prefix:
                    return entry.target
                continue
            rest = _under(entry.prefix, url_path)
            if rest is None:
                continue
            candidate = _inside(entry.target, rest)
            if candidate is not None and candidate.is_file():
                return candidate
        return None


def _under(prefix: str, url_path: str) -> str | None:
    """What follows ``prefix/`` in ``url_path``, or None when it is not under it."""
    if prefix == "/":
        return url_path[1:]
    if url_path.startswith(prefix + "/"):
        return url_path[len(prefix) + 1 :]
    return None


def _inside(root: Path, relative: str) -> Path | None:
    """``root / relative`` when it stays inside ``root``.

    :raises _Refused: a segment is ``..``/``.``/absolute/odd, or a symlink leads out.
    """
    segments = [segment for segment in relative.split("/") if segment]
    if not segments:
        return None
    for segment in segments:
        if segment in (".", "..") or "\\" in segment or "\x00" in segment:
            raise _Refused(relative)
    candidate = root.joinpath(*segments)
    try:
        resolved = candidate.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        raise _Refused(relative) from None
    if not resolved.is_relative_to(root):
        raise _Refused(relative)
    return resolved


def _not_found(start_response: StartResponse) -> list[bytes]:
    start_response(
        "404 Not Found", [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", "9")]
    )
    return [b"Not Found"]


def _not_modified_since(environ: Mapping[str, Any], mtime: int) -> bool:
    header = environ.get("HTTP_IF_MODIFIED_SINCE")
    if not header:
        return False
    try:
        since = email.utils.parsedate_to_datetime(str(header))
    except (TypeError, ValueError):
        return False
    return mtime <= int(since.timestamp())


def _respond(
    environ: Mapping[str, Any],
    start_response: StartResponse,
    path: Path,
    file: IO[bytes],
    info: os.stat_result,
) -> Iterable[bytes]:
    mtime = int(info.st_mtime)
    headers = [("Last-Modified", email.utils.formatdate(mtime, usegmt=True))]
    if _not_modified_since(environ, mtime):
        file.close()
        start_response("304 Not Modified", headers)
        return []
    headers += [
        ("Content-Type", content_type(path)),
        ("Content-Length", str(info.st_size)),
        ("X-Content-Type-Options", "nosniff"),
    ]
    start_response("200 OK", headers)
    if environ.get("REQUEST_METHOD") == "HEAD":
        file.close()
        return []
    wrapper = environ.get("wsgi.file_wrapper")
    if wrapper is not None:
        return wrapper(file, CHUNK_SIZE)  # type: ignore[no-any-return]
    return _FileBody(file)


class _FileBody:
    """A file's content in chunks; closed by the server when the response ends."""

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self._file.read(CHUNK_SIZE):
            yield chunk

    def close(self) -> None:
        self._file.close()
