#!/usr/bin/env python3
"""Summarise a py-spy ``--format raw`` profile (collapsed stacks) as two top lists.

    python bench/profile_summary.py /tmp/prof/echo-geventsio.txt [--top 30] [--lines]

*self*: where the samples were taken (the innermost frame: C calls such as a
``send()`` count for the Python line that made them); *total*: the share of samples
with the function anywhere on the stack. ``--lines`` keeps line numbers (one entry
per line of code instead of per function). ``--under NAME`` keeps only stacks that
pass through a function whose name contains NAME.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<name>.*) \((?P<file>[^:]*):(?P<line>\d+)\)$")


def frame_key(frame: str, with_lines: bool) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    where = match["file"].split("site-packages/")[-1]
    if with_lines:
        return f"{match['name']} ({where}:{match['line']})"
    return f"{match['name']} ({where})"


def summarise(path: Path, top: int, with_lines: bool, under: str | None) -> str:
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for raw in path.read_text().splitlines():
        stack, _, count_text = raw.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = stack.split(";")
        if under and not any(under in f for f in frames):
            continue
        count = int(count_text)
        samples += count
        keys = [frame_key(f, with_lines) for f in frames]
        own[keys[-1]] += count
        for key in set(keys):
            total[key] += count
    lines = [f"{path.name}: {samples} samples" + (f" under {under}" if under else "")]
    for title, counter in (("self", own), ("total", total)):
        lines.append(f"-- {title}")
        for key, count in counter.most_common(top):
            lines.append(f"{100 * count / max(samples, 1):6.1f}%  {key}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profiles", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--lines", action="store_true", help="one entry per line of code")
    parser.add_argument("--under", help="only stacks through a function containing this")
    args = parser.parse_args()
    for path in args.profiles:
        print(summarise(path, args.top, args.lines, args.under))


if __name__ == "__main__":
    main()
