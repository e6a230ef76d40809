"""The build the run asked for is the build it tests (tests/build.py): scripts/test.sh
runs the suite on the compiled geventsio and again on its sources; a compiled run that
quietly imported sources, or a pure one that imported extensions, would test neither."""

from __future__ import annotations

import importlib
import sys

import pytest

from tests import build


def _is_extension(name: str) -> bool:
    return build.is_compiled(importlib.import_module(name))


@pytest.mark.skipif(build.wanted() != "compiled", reason="a run of the compiled build")
@pytest.mark.parametrize("name", build.compiled_modules())
def test_a_compiled_run_imports_every_compiled_module_as_an_extension(name: str) -> None:
    assert _is_extension(name), f"{name} came from its source in a compiled run"


@pytest.mark.skipif(build.wanted() != "pure", reason="a run of the pure-Python build")
def test_a_pure_run_imports_no_extension() -> None:
    for name in build.compiled_modules():
        importlib.import_module(name)
    loaded = [name for name in sys.modules if name.startswith(("geventsio.", "flask_ext."))]
    assert len(loaded) > len(build.compiled_modules())
    assert [name for name in loaded if _is_extension(name)] == []


def test_the_compiled_modules_exist_as_sources() -> None:
    for name in build.compiled_modules():
        assert (build.ROOT / (name.replace(".", "/") + ".py")).is_file(), name
