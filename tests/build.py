"""Which build of geventsio the tests run: the compiled one or its Python sources.

``scripts/compile.sh`` compiles the hot path with mypyc next to the sources, and Python
prefers an extension module to a source file. ``GEVENTSIO_TEST_BUILD`` says which build a
run means to test: ``compiled`` (scripts/test.sh's main run: every module of setup.py's
list must then be compiled, and up to date), ``pure`` (the sources, even where extensions
exist: :func:`select_build` makes this process import them; processes the tests start run
what they find) or unset (whatever is there, refused only when it is out of date).

Imports nothing of geventsio: it runs before geventsio is first imported.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = (ROOT / "geventsio", ROOT / "flask_ext")
STAMP = ROOT / "build" / ".compiled"
VARIABLE = "GEVENTSIO_TEST_BUILD"


def wanted() -> str | None:
    """``"compiled"``, ``"pure"`` or None (whatever is there)."""
    value = os.environ.get(VARIABLE) or None
    if value not in (None, "compiled", "pure"):
        raise SystemExit(f"{VARIABLE} must be 'compiled' or 'pure', not {value!r}")
    return value


def compiled_modules() -> list[str]:
    """The dotted names of the modules setup.py compiles."""
    namespace: dict[str, object] = {}
    source = (ROOT / "setup.py").read_text()
    exec(compile(source.split("\ndef ", 1)[0], "setup.py", "exec"), namespace)
    paths = [*namespace["COMPILED_MODULES"], *namespace["FLASK_EXT_COMPILED"]]  # type: ignore[misc]
    return [path.removesuffix(".py").replace("/", ".") for path in paths]


def extensions() -> list[Path]:
    """The compiled extension modules present in the source tree."""
    return sorted(path for package in PACKAGES for path in package.rglob("*.so"))


def stale_sources() -> list[Path]:
    """Sources changed since the extensions were built (all of them when never stamped)."""
    if not extensions():
        return []
    built = STAMP.stat().st_mtime if STAMP.exists() else 0.0
    sources = (path for package in PACKAGES for path in package.rglob("*.py"))
    return [path for path in sources if path.stat().st_mtime > built]


class SourcesOnly(importlib.abc.MetaPathFinder):
    """Finds geventsio's and flask_ext's submodules among their sources, passing over
    extensions."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(("geventsio.", "flask_ext.")) or path is None:
            return None
        loaders = [(importlib.machinery.SourceFileLoader, importlib.machinery.SOURCE_SUFFIXES)]
        for entry in path:
            spec = importlib.machinery.FileFinder(entry, *loaders).find_spec(fullname)
            if spec is not None:
                return spec
        return None


def select_build() -> None:
    """Make this process import the build ``GEVENTSIO_TEST_BUILD`` asks for, or stop the
    run with a clear message when that build is not there or is out of date."""
    build = wanted()
    if build == "pure":
        if any(name.startswith(("geventsio.", "flask_ext.")) for name in sys.modules):
            raise SystemExit("geventsio was imported before the pure-Python build was chosen")
        sys.meta_path.insert(0, SourcesOnly())
        return
    stale = stale_sources()
    if stale:
        raise SystemExit(
            f"the compiled geventsio is older than {stale[0].relative_to(ROOT)}: run "
            "scripts/compile.sh (or GEVENTSIO_COMPILE=0 scripts/compile.sh to remove it)"
        )
    if build == "compiled" and not extensions():
        raise SystemExit(
            "GEVENTSIO_TEST_BUILD=compiled, but nothing is compiled: run scripts/compile.sh"
        )


def is_compiled(module: ModuleType) -> bool:
    """Whether ``module`` was imported from its compiled extension."""
    return isinstance(module.__spec__.loader, importlib.machinery.ExtensionFileLoader)


def replaces_a_method_of(module: ModuleType) -> pytest.MarkDecorator:
    """Marks a test that replaces a method of one of ``module``'s objects to watch it:
    skipped where the module is compiled (its objects' methods cannot be replaced); the
    pure-Python run of scripts/test.sh runs it."""
    return pytest.mark.skipif(
        is_compiled(module), reason=f"replaces a method of {module.__name__}'s compiled objects"
    )
