"""Fail when a run of six or more lines is written twice inside the given packages.

Usage: ``python scripts/check_duplicates.py [--min-lines N] DIR [DIR ...]``.

Each ``.py`` file under the directories is read as text. Lines that carry no logic of
their own are passed over: blank lines, comments, imports, lines of lone punctuation
and the lines of a ``def`` signature (an override keeps its base class's signature, and
that is not a repeat worth a helper). What is left is compared with white space folded;
every window of ``--min-lines`` consecutive such lines that stands in two places is
reported once per pair of places, and the exit status is 1. With none, it prints a line
that says so and exits 0.
"""

from __future__ import annotations

import argparse
import itertools
import re
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

#: Lines that carry no logic of their own: lone brackets, commas and the like.
_PUNCTUATION = re.compile(r"^[\s()\[\]{},:;.]*$")
_IMPORT = re.compile(r"^(from\s+\S+\s+import\b|import\s)")
_DEF = re.compile(r"^(async\s+)?def\s")


@dataclass(frozen=True)
class Line:
    """One line that counts, with where it stands."""

    path: Path
    number: int
    text: str


def counted_lines(path: Path) -> list[Line]:
    """The lines of ``path`` that take part in the comparison, white space folded."""
    kept: list[Line] = []
    in_signature = False
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = " ".join(raw.split())
        if in_signature or _DEF.match(text):
            in_signature = not text.endswith(":")
            continue
        if not text or text.startswith("#") or _IMPORT.match(text) or _PUNCTUATION.match(text):
            continue
        kept.append(Line(path, number, text))
    return kept


def windows(lines: list[Line], size: int) -> Iterator[tuple[tuple[str, ...], Line]]:
    """Every run of ``size`` consecutive counted lines, with its first line."""
    for start in range(len(lines) - size + 1):
        yield tuple(line.text for line in lines[start : start + size]), lines[start]


def find_repeats(roots: list[Path], size: int) -> list[tuple[Line, Line]]:
    """Pairs of places (first lines) where the same run of ``size`` lines stands; runs
    that overlap one reported pair are folded into it."""
    places: dict[tuple[str, ...], list[Line]] = defaultdict(list)
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            for key, first in windows(counted_lines(path), size):
                places[key].append(first)
    pairs: list[tuple[Line, Line]] = []
    reported: set[tuple[Path, int, Path, int]] = set()
    for found in places.values():
        for left, right in itertools.pairwise(found):
            if not any(_overlaps(left, right, seen, size) for seen in reported):
                pairs.append((left, right))
            reported.add((left.path, left.number, right.path, right.number))
    return pairs


def _overlaps(left: Line, right: Line, seen: tuple[Path, int, Path, int], size: int) -> bool:
    """Whether the pair (left, right) is part of the longer run already reported as
    ``seen``."""
    path_a, number_a, path_b, number_b = seen
    return (
        (left.path, right.path) == (path_a, path_b)
        and abs(left.number - number_a) < 2 * size
        and abs(right.number - number_b) < 2 * size
    )


def main(argv: list[str] | None = None) -> int:
    """Run the check; the exit status is 1 when anything is repeated."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-lines", type=int, default=6)
    parser.add_argument("roots", nargs="+", type=Path)
    options = parser.parse_args(argv)
    pairs = find_repeats(options.roots, options.min_lines)
    for left, right in pairs:
        print(
            f"{left.path}:{left.number} repeats {right.path}:{right.number} "
            f"({options.min_lines}+ lines): {left.text}"
        )
    if pairs:
        print(f"{len(pairs)} repeated runs: write each once and call it from both places")
        return 1
    print(f"no run of {options.min_lines}+ lines repeated in {', '.join(map(str, options.roots))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
