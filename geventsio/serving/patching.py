"""Is gevent's monkey-patching in place, and did it come early enough?

geventsio never patches on import (the CLI does, because it was asked to). When it starts
serving it checks two things, and says what it found in one warning:

* **Missing**: patching was expected (``expect_patched=True``, the environment variable
  ``GEVENTSIO_EXPECT_PATCHED=1``) but the ``socket`` module is not patched: every
  blocking call (a database driver, ``requests``, ``time.sleep``) stalls every client.
* **Too late**: gevent patches modules in place, but a module imported *before* patching
  that bound a standard-library object by name (``from socket import socket``,
  ``from threading import local``, ``ssl`` itself binding ``socket.socket``) keeps the
  blocking original. The check looks, in every loaded Python module but gevent's, for a
  global that *is* one of the originals gevent saved (``gevent.monkey.saved``) -- evidence,
  not a guess from import order. gevent's own warning covers one such case (``SSLContext``);
  this one covers them all. A few references exist in every process even when patching
  is its first line (modules of the interpreter's start-up): they are known and skipped.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

from gevent import monkey

logger = logging.getLogger(__name__)

#: Set to 1/true/yes to say that the program is meant to run monkey-patched.
EXPECT_PATCHED_ENV = "GEVENTSIO_EXPECT_PATCHED"

#: Modules whose references to originals are never a mistake: gevent's own, and ours.
_OWN_PACKAGES = frozenset({"gevent", "geventsio", "greenlet"})

#: (module, global) pairs present even when patching is the program's first statement:
#: the interpreter imports these modules before any user code runs.
_ALWAYS_PRESENT = frozenset(
    {
        ("functools", "RLock"),
        ("reprlib", "get_ident"),
        ("tempfile", "_allocate_lock"),
        ("threading", "stack_size"),
    }
)

_TRUE = frozenset({"1", "true", "yes", "on"})


def patching_expected(expect_patched: bool | None = None) -> bool:
    """``expect_patched`` if given, else what ``GEVENTSIO_EXPECT_PATCHED`` says."""
    if expect_patched is not None:
        return expect_patched
    return os.environ.get(EXPECT_PATCHED_ENV, "").strip().lower() in _TRUE


def is_patched() -> bool:
    """Whether gevent has patched the ``socket`` module (the one that matters most)."""
    return bool(monkey.is_module_patched("socket"))


def _originals() -> dict[int, tuple[str, str]]:
    """id(original) -> (module, name) for every object gevent replaced."""
    found: dict[int, tuple[str, str]] = {}
    for module_name, items in monkey.saved.items():
        for name, original in items.items():
            if callable(original):
                found[id(original)] = (module_name, name)
    return found


def unpatched_bindings(ignore: Callable[[str], bool] | None = None) -> dict[str, list[str]]:
    """Modules that hold a standard-library original that gevent has since replaced.

    :param ignore: ``ignore(module_name)`` true for modules not to report.
    :returns: module name -> the globals that are originals, as ``"name (socket.socket)"``.
    """
    originals = _originals()
    if not originals:
        return {}
    found: dict[str, list[str]] = {}
    for module_name, module in list(sys.modules.items()):
        if module_name.partition(".")[0] in _OWN_PACKAGES or (ignore and ignore(module_name)):
            continue
        if not str(getattr(module, "__file__", "") or "").endswith(".py"):
            continue  # an extension module defines the originals; it cannot hold stale ones
        for name, value in list(vars(module).items()):
            origin = originals.get(id(value))
            if origin is None or origin[0] == module_name:
                continue
            if (module_name, name) in _ALWAYS_PRESENT:
                continue
            if monkey.saved[origin[0]].get(origin[1]) is value:
                found.setdefault(module_name, []).append(f"{name} ({origin[0]}.{origin[1]})")
    return found


def check_patching(
    expect_patched: bool | None = None, *, ignore: Callable[[str], bool] | None = None
) -> str | None:
    """Warn (one ``logging`` warning) when patching is missing or came too late.

    :param expect_patched: True: the program must be patched; None: as
        ``GEVENTSIO_EXPECT_PATCHED`` says; False: it need not be (a late patch is still
        reported when there is one).
    :param ignore: ``ignore(module_name)`` true for modules imported before patching on
        purpose (the CLI's own imports, gunicorn's).
    :returns: the warning's text, or None when all is well.
    """
    if not is_patched():
        if not patching_expected(expect_patched):
            return None
        message = (
            "gevent monkey-patching was expected but the standard library is not patched: "
            "every blocking call (sockets, DNS, time.sleep, database drivers) will stall all "
            "clients. Make `from gevent import monkey; monkey.patch_all()` the first lines of "
            "your main module, or start with `python -m geventsio module:app`, which patches."
        )
    else:
        late = unpatched_bindings(ignore)
        if not late:
            return None
        modules = "; ".join(f"{name}: {', '.join(found)}" for name, found in sorted(late.items()))
        message = (
            "gevent monkey-patching came too late: these modules were imported before "
            f"monkey.patch_all() and still hold blocking originals -- {modules}. Call "
            "`from gevent import monkey; monkey.patch_all()` before any other import "
            "(gunicorn: without preload_app, or patch at the top of gunicorn.conf.py)."
        )
    logger.warning("%s", message)
    return message
