"""The in-memory adapter's two maps through every change of a room's membership (a
one-member room is stored apart from a larger one: the answers must not tell)."""

from __future__ import annotations

from types import SimpleNamespace

from geventsio._types import Room, SocketId
from geventsio.adapters.memory import InMemoryAdapter


def adapter() -> InMemoryAdapter:
    return InMemoryAdapter(SimpleNamespace(sockets={}, serializer=None))  # type: ignore[arg-type]


A, B, C = SocketId("a"), SocketId("b"), SocketId("c")
RED, BLUE = Room("red"), Room("blue")


def test_a_room_grows_from_one_member_and_shrinks_back_to_none():
    rooms = adapter()
    rooms.add_all(A, [Room(A), RED])
    rooms.add_all(A, [RED])  # again: still one member
    assert rooms.room_members(RED) == {A}
    rooms.add_all(B, [RED])
    rooms.add_all(C, [RED])
    assert rooms.room_members(RED) == {A, B, C}
    rooms.delete(B, RED)
    rooms.delete(C, RED)
    assert rooms.room_members(RED) == {A}
    rooms.delete(C, RED)  # not a member: nothing changes
    assert rooms.room_members(RED) == {A}
    rooms.delete(A, RED)
    assert RED not in rooms.rooms()
    assert rooms.socket_rooms(A) == {A}


def test_a_sockets_rooms_follow_joins_and_leaves():
    rooms = adapter()
    rooms.add_all(A, [Room(A)])
    assert rooms.socket_rooms(A) == {A}
    rooms.add_all(A, [RED, BLUE])
    assert rooms.socket_rooms(A) == {A, RED, BLUE}
    rooms.delete(A, Room(A))
    rooms.delete(A, RED)
    assert rooms.socket_rooms(A) == {BLUE}
    rooms.delete(A, BLUE)
    assert rooms.socket_rooms(A) == frozenset()
    rooms.delete(A, BLUE)  # a socket in no room: nothing to do
    assert rooms.rooms() == frozenset()


def test_delete_all_leaves_other_members_in_place():
    rooms = adapter()
    rooms.add_all(A, [Room(A), RED, BLUE])
    rooms.add_all(B, [Room(B), RED])
    rooms.delete_all(A)
    assert rooms.rooms() == {B, RED}
    assert rooms.room_members(RED) == {B}
    assert rooms.socket_rooms(A) == frozenset()
    rooms.delete_all(A)  # twice: nothing left to do
    assert rooms.socket_rooms(B) == {B, RED}
