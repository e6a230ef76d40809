"""The chat example in two browser pages: join a room, say something in one, see it in
the other -- over WebSocket, and with WebSocket disabled.

The page is driven by its behaviour only: URL parameters (``nickname``, ``room``,
``transports``), a "joined" confirmation, a message field (``name=text``) sent with
Enter, and the messages shown in the page. The helpers below are the one place that
knows the page.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.deploy.processes import PYTHON, ROOT, Processes, Server, free_port

pytestmark = pytest.mark.e2e

CHAT = ROOT / "examples" / "chat" / "app.py"
TIMEOUT_MS = 10_000


@pytest.fixture
def chat(processes: Processes) -> Server:
    port = free_port()
    process = processes.start([PYTHON, str(CHAT), "--port", str(port)])
    process.wait_for(r"serving on http://127\.0\.0\.1:\d+")
    return Server(process, port)


@dataclass
class ChatPage:
    """A chat page and the WebSocket URLs it opened."""

    page: Any
    websockets: list[str] = field(default_factory=list)


def open_chat(browser: Any, server: Server, nickname: str, room: str, query: str) -> ChatPage:
    """A page in a fresh browser context (a separate user), joined to ``room``."""
    chat = ChatPage(browser.new_context().new_page())
    chat.page.set_default_timeout(TIMEOUT_MS)
    chat.page.on("websocket", lambda websocket: chat.websockets.append(websocket.url))
    chat.page.goto(f"{server.url}/?nickname={nickname}&room={room}{query}")
    chat.page.get_by_text(re.compile(f"joined {room}")).first.wait_for()
    return chat


def say(chat: ChatPage, text: str) -> None:
    """Type a message and send it with Enter."""
    message = chat.page.locator("input[name=text]")
    message.fill(text)
    message.press("Enter")


def wait_for_message(chat: ChatPage, sender: str, text: str) -> None:
    """Wait until the page shows ``text`` from ``sender``."""
    chat.page.get_by_text(re.compile(f"{sender}.*{re.escape(text)}")).first.wait_for()


@pytest.mark.parametrize(
    ("query", "websocket"),
    [("", True), ("&transports=polling", False)],
    ids=["websocket", "polling"],
)
def test_a_message_reaches_the_other_page(
    browser: Any, chat: Server, query: str, websocket: bool
) -> None:
    room = f"room-{uuid.uuid4().hex[:8]}"
    alice = open_chat(browser, chat, "alice", room, query)
    bob = open_chat(browser, chat, "bob", room, query)
    try:
        text = f"hello {uuid.uuid4().hex[:8]}"
        say(alice, text)
        wait_for_message(bob, "alice", text)
        wait_for_message(alice, "alice", text)  # the sender sees it too

        say(bob, "and back")
        wait_for_message(alice, "bob", "and back")

        for chat_page in (alice, bob):
            opened = [url for url in chat_page.websockets if "/socket.io/" in url]
            assert bool(opened) is websocket, chat_page.websockets
    finally:
        alice.page.context.close()
        bob.page.context.close()
    assert "Traceback" not in chat.process.output
