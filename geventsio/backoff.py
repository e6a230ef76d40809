"""Exponential backoff with jitter for reconnection delays; pure, with an injectable RNG.

The one backoff of the package: the client's reconnection manager and the Redis
adapter's link both count their attempts with it.

The delay of attempt ``n`` (counting from 0) is ``min_delay * factor**n``, moved by up to
``jitter`` of itself either way, then capped at ``max_delay``: the JavaScript client's
``Backoff`` (``backo2``), except that the random deviation is uniform over
``[-jitter, +jitter]`` instead of taking its sign from a digit of the same draw, and that
the exponent stops growing once the cap is reached (JavaScript's reaches ``Infinity``
after ~1,000 attempts, and its delay then collapses to 0).
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable


class Backoff:
    """Reconnection delays, in seconds.

    :param min_delay: the delay of the first attempt, before jitter.
    :param max_delay: the longest delay, after jitter.
    :param jitter: the randomization factor, in ``[0, 1]``: each delay is moved by up to
        this fraction of itself.
    :param factor: how much the delay grows per attempt.
    :param random: returns a float in ``[0, 1)``; :func:`random.random` by default.
    :raises ValueError: a negative delay, ``max < min``, ``jitter`` outside ``[0, 1]``,
        or ``factor < 1``.
    """

    def __init__(
        self,
        min_delay: float = 1.0,
        max_delay: float = 5.0,
        jitter: float = 0.5,
        factor: float = 2.0,
        random: Callable[[], float] = _random.random,
    ) -> None:
        if min_delay < 0 or max_delay < min_delay:
            raise ValueError(f"need 0 <= min_delay <= max_delay, got {min_delay}, {max_delay}")
        if not 0 <= jitter <= 1:
            raise ValueError(f"jitter must be in [0, 1], got {jitter}")
        if factor < 1:
            raise ValueError(f"factor must be at least 1, got {factor}")
        self.min_delay = min_delay
        self.max_delay = max_delay
        self.jitter = jitter
        self.factor = factor
        self._random = random
        #: Delays handed out since the last :meth:`reset`.
        self.attempts = 0

    def duration(self) -> float:
        """The delay before the next attempt; counts the attempt."""
        base = self.min_delay
        for _ in range(self.attempts):  # stops as soon as the cap is reached
            if base >= self.max_delay or base == 0:
                break
            base *= self.factor
        self.attempts += 1
        if self.jitter:
            base += base * self.jitter * (2 * self._random() - 1)
        return max(0.0, min(base, self.max_delay))

    def reset(self) -> None:
        """Start counting attempts from zero again (after a successful connection)."""
        self.attempts = 0
