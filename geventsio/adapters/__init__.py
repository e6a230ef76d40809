"""Adapters own rooms and broadcasting: in memory, or across processes through Redis."""
