"""The reconnection backoff: pure, with an injected random source."""

from __future__ import annotations

import itertools

import pytest

from geventsio.client import Backoff


def test_delays_double_until_the_cap() -> None:
    backoff = Backoff(min_delay=1, max_delay=5, jitter=0)
    assert [backoff.duration() for _ in range(6)] == [1, 2, 4, 5, 5, 5]
    assert backoff.attempts == 6


def test_reset_starts_over() -> None:
    backoff = Backoff(min_delay=1, max_delay=5, jitter=0)
    backoff.duration()
    backoff.duration()
    backoff.reset()
    assert backoff.attempts == 0
    assert backoff.duration() == 1


@pytest.mark.parametrize(
    ("draw", "expected"),
    [
        (0.0, 0.5),  # the lowest draw: -jitter
        (0.5, 1.0),  # the middle: no deviation
        (0.75, 1.25),
        (0.999999, 1.4999995),  # just under +jitter
    ],
)
def test_jitter_moves_the_delay_by_up_to_the_factor(draw: float, expected: float) -> None:
    backoff = Backoff(min_delay=1, max_delay=5, jitter=0.5, random=lambda: draw)
    assert backoff.duration() == pytest.approx(expected)


def test_jitter_applies_before_the_cap() -> None:
    backoff = Backoff(min_delay=4, max_delay=5, jitter=0.5, random=lambda: 0.999)
    assert backoff.duration() == 5  # 4 * 1.4995, capped
    backoff = Backoff(min_delay=4, max_delay=5, jitter=0.5, random=lambda: 0.0)
    assert backoff.duration() == 2  # 4 * 0.5
    assert backoff.duration() == 4  # 8 * 0.5: the base may pass the cap, the result not


def test_the_sequence_of_draws_is_used_in_order() -> None:
    draws = iter([0.0, 1.0 - 1e-9, 0.5])
    backoff = Backoff(min_delay=1, max_delay=100, jitter=0.5, random=lambda: next(draws))
    delays = [backoff.duration() for _ in range(3)]
    assert delays == pytest.approx([0.5, 3.0, 4.0])


def test_thousands_of_attempts_stay_at_the_cap() -> None:
    backoff = Backoff(min_delay=1, max_delay=5, jitter=0.5, random=lambda: 0.5)
    delays = list(itertools.islice(iter(backoff.duration, None), 5000))
    assert delays[-1] == 5
    assert backoff.attempts == 5000


def test_a_zero_delay_stays_zero() -> None:
    backoff = Backoff(min_delay=0, max_delay=5, jitter=0.5, random=lambda: 0.9)
    assert [backoff.duration() for _ in range(3)] == [0, 0, 0]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_delay": -1},
        {"min_delay": 6, "max_delay": 5},
        {"jitter": 1.5},
        {"jitter": -0.1},
        {"factor": 0.5},
    ],
)
def test_bad_parameters_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)
