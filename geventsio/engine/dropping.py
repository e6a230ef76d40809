"""What ``slow_consumer_policy="drop"`` may drop from a full outgoing buffer, and in what order.

Every item queued for a client carries a :class:`Tier`. When the buffer cannot take a new
item, the items that may go make room: volatile packets first, then broadcast packets,
the oldest first in each tier, and never an item of a tier above the new one's (a
broadcast does not push out a reply). Acknowledgements, CONNECT/DISCONNECT answers,
events sent to one socket and the engine's own packets (ping, close, noop) are
:attr:`Tier.KEEP` and never dropped; nor is the rest of a frame already partly written.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum


class Tier(IntEnum):
    """How readily a queued item may be dropped (lowest first)."""

    VOLATILE = 0
    BROADCAST = 1
    KEEP = 2


def choose_victims(
    tiers: Sequence[Tier], sizes: Sequence[int], excess: int, tier: Tier
) -> list[int] | None:
    """The indexes of queued items to drop to free ``excess`` bytes for an item of ``tier``
    (in ascending order), or None when dropping every item that may go is not enough.

    :param tiers: the queued items' tiers, oldest first.
    :param sizes: their sizes, in the same order.
    :param excess: bytes to free.
    :param tier: the new item's tier: only items of this tier or below may go.
    """
    victims: list[int] = []
    freed = 0
    for level in range(min(tier, Tier.BROADCAST) + 1):
        for index, item_tier in enumerate(tiers):
            if freed >= excess:
                return sorted(victims)
            if item_tier == level:
                victims.append(index)
                freed += sizes[index]
    return sorted(victims) if freed >= excess else None
