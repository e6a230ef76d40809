"""Helpers of the client tests."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from geventsio.client import Client
from tests.support.waiting import wait_until

#: Seconds a test waits for something the client should do by itself.
TIMEOUT = 10.0

MANAGER_EVENTS = ("reconnect_attempt", "reconnect", "reconnect_error", "reconnect_failed")


class Events:
    """Records a client's lifecycle events, in the order its handlers ran.

    Entries: ``("connect", ns)``, ``("disconnect", ns, reason)``,
    ``("connect_error", ns, error)`` and ``(manager_event, *args)``.
    """

    def __init__(self, client: Client, namespaces: Iterable[str] = ("/",)) -> None:
        self.log: list[tuple[Any, ...]] = []
        for ns in namespaces:
            client.on("connect", self._recorder("connect", ns), namespace=ns)
            client.on("disconnect", self._recorder("disconnect", ns), namespace=ns)
            client.on("connect_error", self._recorder("connect_error", ns), namespace=ns)
        for event in MANAGER_EVENTS:
            client.on(event, self._recorder(event))

    def _recorder(self, *head: Any) -> Any:
        def record(*args: Any) -> None:
            self.log.append((*head, *args))

        return record

    def of(self, name: str) -> list[tuple[Any, ...]]:
        """The entries of one event."""
        return [entry for entry in self.log if entry[0] == name]

    def wait_for(
        self, name: str, count: int = 1, timeout: float = TIMEOUT
    ) -> list[tuple[Any, ...]]:
        """Wait until ``name`` happened ``count`` times; return its entries."""
        wait_until(lambda: len(self.of(name)) >= count, timeout, f"{count} x {name}: {self.log}")
        return self.of(name)

    def reasons(self, namespace: str = "/") -> list[str]:
        """The disconnect reasons of a namespace, in order."""
        return [entry[2] for entry in self.of("disconnect") if entry[1] == namespace]
