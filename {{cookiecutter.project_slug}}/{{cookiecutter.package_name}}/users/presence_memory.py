"""Presence in this process's memory: right for the memory broker's one process."""

from __future__ import annotations

from .presence import LocalUsers


class MemoryPresenceStore:
    """The process's own sockets are the whole truth: nothing to share or refresh."""

    def __init__(self, local: LocalUsers) -> None:
        self.local = local

    async def add(self, room: str, user: str) -> bool:
        return True  # the user's first socket here is their first anywhere

    async def remove(self, room: str, user: str) -> bool:
        return True

    async def users(self, room: str) -> list[str]:
        return sorted(self.local.get(room, ()))

    async def refresh(self, local: LocalUsers) -> list[tuple[str, str, str]]:
        return []
